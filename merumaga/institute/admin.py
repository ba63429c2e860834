from django.contrib import admin
from django.db import models
from unfold.admin import ModelAdmin

from merumaga.institute.models import SiteSettings


@admin.register(SiteSettings)
class SiteSettingsAdmin(ModelAdmin):
    list_display = ("__str__", "organisation_name", "from_email", "updated_at")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def has_add_permission(self, request):
        # One row only: the settings are edited, never multiplied.
        return not SiteSettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False
