from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from payments.gateways import get_gateway
from payments.services.callbacks import callback_receive


@csrf_exempt
@require_POST
def gateway_callback(request: HttpRequest, gateway: str) -> HttpResponse:
    """Store the raw callback and answer at once; a worker applies it."""
    if gateway not in settings.PAYDESK_GATEWAYS:
        raise Http404("unknown gateway")
    gw = get_gateway(gateway)
    accepted, _row = callback_receive(gateway=gw, request=request)
    return gw.acknowledge(accepted)
