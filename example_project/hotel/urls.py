"""Staff API URLs (filled in by the staff views)."""

urlpatterns: list = []
