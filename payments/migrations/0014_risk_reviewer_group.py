"""The "Risk reviewer" group: staff who review held and failed payments in the admin."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Risk reviewer"
# (app_label, codename): what a reviewer sees and decides; nothing about keys, gateways or merchants.
PERMISSIONS = [
    ("payments", "view_payment"),
    ("payments", "release_payment"),
    ("payments", "reject_payment"),
    ("payments", "hold_payment"),
    ("payments", "retry_payment"),
    ("payments", "cancel_payment"),
    ("payments", "view_refund"),
    ("payments", "view_event"),
    ("payments", "view_gatewayattempt"),
    ("payments", "view_gatewaycallback"),
    ("payments", "reapply_callback"),
    ("payments", "view_paymentbatch"),
    ("payments", "view_delivery"),
    ("payments", "redeliver"),
    ("merchants", "view_merchant"),
]


def create_group(apps, schema_editor):
    # Permissions are normally created after migrate; create them now so the group can hold them.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    for app_label, codename in PERMISSIONS:
        group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def delete_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0013_admin_permissions"),
        ("merchants", "0008_accounts"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_group, delete_group)]
