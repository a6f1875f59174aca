"""The example project's URLs plus media files, for the browser tests.

The example serves media only with DEBUG on, and tests run with DEBUG off; the
board must show offer photos, so they are served here at request time (MEDIA_ROOT
is read per request because tests point it elsewhere).
"""

from django.conf import settings
from django.urls import re_path
from django.views.static import serve

from example_project.urls import urlpatterns as example_urlpatterns


def media(request, path):
    """A file under the current ``MEDIA_ROOT``."""
    return serve(request, path, document_root=settings.MEDIA_ROOT)


urlpatterns = [*example_urlpatterns, re_path(r"^media/(?P<path>.*)$", media)]
