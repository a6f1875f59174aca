"""Test host app."""

from django.apps import AppConfig


class TestappConfig(AppConfig):
    """A host app with non-default names."""

    name = "tests.testapp"
    label = "testapp"
    default_auto_field = "django.db.models.AutoField"
