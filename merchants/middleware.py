from merchants.models import Membership

SESSION_KEY = "current_merchant_id"


class CurrentMerchantMiddleware:
    """Attach the signed-in user's current merchant and membership to the request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.membership = None
        request.merchant = None
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            memberships = Membership.objects.filter(user=user).select_related("merchant")
            chosen = request.session.get(SESSION_KEY)
            membership = None
            if chosen:
                membership = memberships.filter(merchant_id=chosen).first()
            if membership is None:
                membership = memberships.order_by("merchant__name").first()
            if membership is not None:
                request.membership = membership
                request.merchant = membership.merchant
        return self.get_response(request)
