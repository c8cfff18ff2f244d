from django.conf import settings


def oneoffice(request):
    """Tell every admin page whether it talks to the built-in sandbox."""
    return {"oneoffice_sandbox": settings.ONEOFFICE_SANDBOX}
