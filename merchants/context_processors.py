from merchants.models import Membership


def current_merchant(request):
    user = getattr(request, "user", None)
    memberships = []
    if user is not None and user.is_authenticated:
        memberships = list(Membership.objects.filter(user=user).select_related("merchant"))
    return {
        "current_merchant": getattr(request, "merchant", None),
        "current_membership": getattr(request, "membership", None),
        "user_memberships": memberships,
    }
