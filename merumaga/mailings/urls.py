from django.urls import path

from merumaga.mailings import views

urlpatterns = [
    path("c/<str:link>/", views.click, name="click"),
    path("c/<str:link>/<str:reader>/", views.click, name="click_reader"),
]
