from django.contrib.auth.management import create_permissions
from django.db import migrations


def create_roles(apps, schema_editor):
    # Permissions are made after all migrations (post_migrate); the roles need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    from merumaga.team.roles import sync_roles

    sync_roles(apps, missing_ok=True)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("institute", "0003_sitesettings_clicks_per_reader"),
        ("subscribers", "0010_alter_subscriber_options_alter_suppression_options"),
        ("publishing", "0005_notify_what_was_waiting"),
        ("mailings", "0005_alter_mailing_options"),
        ("delivery", "0003_alter_delivery_options"),
        ("bounces", "0005_kept_before_read"),
        ("outcomes", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
