from django.urls import path

from merumaga.subscribers import views

urlpatterns = [
    path("subscribe/", views.subscribe, name="subscribe"),
    path("subscribe/check-your-mail/", views.subscribe_done, name="subscribe_done"),
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("preferences/address/<str:token>/", views.confirm_address, name="confirm_address"),
    path("preferences/<str:token>/", views.preferences, name="preferences"),
    path("preferences/<str:token>/address/", views.preferences_address, name="preferences_address"),
    path("preferences/<str:token>/my-data.json", views.preferences_data, name="preferences_data"),
    path("preferences/<str:token>/erase/", views.erase, name="erase"),
    path("erased/", views.erased, name="erased"),
    path("unsubscribe/", views.stop_by_address, name="stop_by_address"),
    path("unsubscribe/sent/", views.stop_link_sent, name="stop_link_sent"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("unsubscribe/<str:token>/reason/", views.unsubscribe_reason, name="unsubscribe_reason"),
]
