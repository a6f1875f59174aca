"""Serializer for the test host's Promotion."""

from rest_framework import serializers

from tests.testapp.models import Promotion


class PromotionSerializer(serializers.ModelSerializer):
    """A promotion as the events carry it."""

    class Meta:
        model = Promotion
        fields = ["id", "headline", "banner", "extra"]
