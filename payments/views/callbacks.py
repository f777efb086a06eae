import logging

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from merchants.ratelimit import client_address, parse_rate, rate_hit, retry_after_header
from payments.gateways import get_gateway
from payments.services.callbacks import callback_receive

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def gateway_callback(request: HttpRequest, gateway: str) -> HttpResponse:
    """Store the raw callback and answer at once; a worker applies it.

    Requests are counted per client address (settings.PAYDESK_CALLBACK_RATE);
    beyond the rate they are answered 429 and stored nowhere, so a flood cannot
    fill the inbox. Gateways retry what they could not deliver.
    """
    limit, duration = parse_rate(settings.PAYDESK_CALLBACK_RATE)
    if limit is not None:
        address = client_address(request)
        hit = rate_hit("callback", address, limit, duration)
        if hit.wait is not None:
            if hit.first_refused:
                logger.warning("callbacks from %s over %s: refused until the window ends", address, limit)
            response = HttpResponse("rate limited", status=429, content_type="text/plain; charset=utf-8")
            response["Retry-After"] = retry_after_header(hit.wait)
            return response
    if gateway not in settings.PAYDESK_GATEWAYS:
        raise Http404("unknown gateway")
    gw = get_gateway(gateway)
    accepted, _row = callback_receive(gateway=gw, request=request)
    return gw.acknowledge(accepted)
