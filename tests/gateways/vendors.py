"""The providers' side, for tests: keys, signed notifications and fake API servers.

Test vectors use the vendors' own SDK code where it exists on PyPI:
`alipay-sdk-python` (get_sign_content, sign_with_rsa2, verify_with_rsa) signs
Alipay answers/notifications and checks our requests; `wechatpayv3`
(rsa_sign, aes_decrypt) signs WeChat Pay answers/notifications and
cross-checks the AES-256-GCM resources built here with `cryptography`.
PayPal has no verification SDK: its fake verify-webhook-signature endpoint
implements PayPal's scheme (SHA256withRSA over
"transmission_id|transmission_time|webhook_id|crc32(body)").
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

from alipay.aop.api.util.SignatureUtils import get_sign_content, sign_with_rsa2, verify_with_rsa
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
from wechatpayv3.utils import aes_decrypt as wx_aes_decrypt
from wechatpayv3.utils import rsa_sign as wx_rsa_sign
from werkzeug import Request, Response


def _b64_body(pem: bytes) -> str:
    return "".join(line for line in pem.decode().splitlines() if not line.startswith("-----"))


@dataclass(frozen=True)
class KeyPair:
    private: rsa.RSAPrivateKey

    @property
    def private_pem(self) -> str:
        """PKCS#8 PEM (WeChat Pay's apiclient_key.pem format)."""
        return self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    @property
    def private_pkcs1_b64(self) -> str:
        """Bare base64 PKCS#1 (the format Alipay's key tool hands out and its SDK signs with)."""
        return _b64_body(
            self.private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )

    @property
    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    @property
    def public_b64(self) -> str:
        """Bare base64 SubjectPublicKeyInfo (how Alipay shows its public key)."""
        return _b64_body(self.public_pem.encode())

    def sign(self, message: bytes) -> str:
        return base64.b64encode(self.private.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()

    def verify(self, message: bytes, signature: str) -> bool:
        try:
            self.private.public_key().verify(
                base64.b64decode(signature), message, padding.PKCS1v15(), hashes.SHA256()
            )
        except (InvalidSignature, ValueError):
            return False
        return True


def make_keypair() -> KeyPair:
    return KeyPair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


# Alipay ------------------------------------------------------------------------------------


def alipay_sign(keys: KeyPair, params: dict[str, str], exclude=("sign", "sign_type")) -> str:
    """Sign like Alipay: the SDK's sorted k=v content, without sign/sign_type and empty values."""
    content = get_sign_content({k: v for k, v in params.items() if k not in exclude and v != ""})
    return sign_with_rsa2(keys.private_pkcs1_b64, content, "utf-8")


def alipay_notify_body(alipay_keys: KeyPair, **fields: str) -> bytes:
    """A form-encoded trade_status_sync notification signed with the Alipay key."""
    params = {
        "notify_time": "2026-01-05 10:00:00",
        "notify_type": "trade_status_sync",
        "notify_id": "ac05" + secrets.token_hex(12),
        "charset": "utf-8",
        "version": "1.0",
        "sign_type": "RSA2",
        "trade_no": "2026010522001400000000000001",
        "buyer_id": "2088102177846880",
        "seller_id": "2088101117955611",
        "gmt_payment": "2026-01-05 09:59:58",
        "subject": "Order",
        **fields,
    }
    params["sign"] = alipay_sign(alipay_keys, params)
    return urlencode(params).encode()


def _certificate(subject: x509.Name, issuer: x509.Name, public_key, signer, serial: int, algorithm=None):
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
    )
    return (
        builder.sign(signer, algorithm or hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
    )


def _ant_name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Ant Financial"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Certification Authority"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


@dataclass(frozen=True)
class AlipayCertificates:
    """Alipay's public-key-certificate mode, built like Alipay's: an RSA and an EC root, a CA, two leaves."""

    root_chain: str
    app_certificate: str
    alipay_certificate: str


def alipay_certificates(app_keys: KeyPair, alipay_keys: KeyPair) -> AlipayCertificates:
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_root_key = ec.generate_private_key(ec.SECP256R1())
    root_name, ec_root_name = (
        _ant_name("iTrusChina Class 2 Root CA - G3"),
        _ant_name("Ant Financial Root CA R2"),
    )
    ca_name = _ant_name("Ant Financial Certification Authority Class 2 R1")
    root = _certificate(root_name, root_name, root_key.public_key(), root_key, 0x5F1B3A2C)
    ec_root = _certificate(ec_root_name, ec_root_name, ec_root_key.public_key(), ec_root_key, 0x7E)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "2021000000000001")])
    app = _certificate(subject, ca_name, app_keys.private.public_key(), root_key, 4_200_000_000_001)
    alipay = _certificate(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "支付宝(中国)网络技术有限公司")]),
        ca_name,
        alipay_keys.private.public_key(),
        root_key,
        4_200_000_000_002,
    )
    return AlipayCertificates(root + ec_root, app, alipay)


def documented_cert_sn(pem: str) -> str:
    """Alipay's certificate SN as its documentation and the community SDKs compute it: the oracle.

    MD5 of "CN=<cn>,OU=<ou>,O=<o>,C=<c>" of the issuer, then the serial number in decimal.
    """
    cert = x509.load_pem_x509_certificate(pem.encode())
    get = lambda oid: cert.issuer.get_attributes_for_oid(oid)[0].value  # noqa: E731
    name = (
        f"CN={get(NameOID.COMMON_NAME)},OU={get(NameOID.ORGANIZATIONAL_UNIT_NAME)},"
        f"O={get(NameOID.ORGANIZATION_NAME)},C={get(NameOID.COUNTRY_NAME)}"
    )
    return hashlib.md5((name + str(cert.serial_number)).encode()).hexdigest()  # noqa: S324


class FakeAlipay:
    """The open-platform gateway: checks each request's RSA2 signature and answers signed JSON.

    In certificate mode (`cert_sns` set: the app_cert_sn and alipay_root_cert_sn every request
    must carry) answers name the signing certificate in `alipay_cert_sn`.
    """

    def __init__(self, httpserver, app_keys: KeyPair, alipay_keys: KeyPair) -> None:
        self.app_keys = app_keys
        self.alipay_keys = alipay_keys
        self.requests: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.answers: dict[str, Any] = {}
        self.cert_sns: tuple[str, str] | None = None
        self.alipay_cert_sn = ""
        self.url = httpserver.url_for("/gateway.do")
        httpserver.expect_request("/gateway.do", method="POST").respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        params = dict(parse_qsl(request.get_data(as_text=True), keep_blank_values=True))
        signature = params.pop("sign", "")
        try:
            verify_with_rsa(self.app_keys.public_b64, get_sign_content(params).encode(), signature)
        except Exception as exc:  # rsa.VerificationError and friends
            self.errors.append(f"request signature: {exc!r}")
            return Response("bad signature", status=400)
        if (
            self.cert_sns is not None
            and (params.get("app_cert_sn"), params.get("alipay_root_cert_sn")) != self.cert_sns
        ):
            self.errors.append(
                f"certificate SNs {params.get('app_cert_sn')!r}, {params.get('alipay_root_cert_sn')!r}"
            )
        params["biz"] = json.loads(params["biz_content"])
        params["content_type"] = request.headers.get("Content-Type")
        self.requests.append(params)
        answer = self.answers[params["method"]]
        node = answer(params["biz"]) if callable(answer) else answer
        return Response(
            self.response_body(params["method"], node), content_type="application/json;charset=utf-8"
        )

    def response_body(self, method: str, node: dict) -> str:
        """Alipay's answer: the response node and, beside it, the signature over its exact JSON text."""
        name = method.replace(".", "_") + "_response"
        node_json = json.dumps(node, ensure_ascii=False, separators=(",", ":"))
        signature = sign_with_rsa2(self.alipay_keys.private_pkcs1_b64, node_json, "utf-8")
        cert = f',"alipay_cert_sn":{json.dumps(self.alipay_cert_sn)}' if self.alipay_cert_sn else ""
        return "{" + json.dumps(name) + ":" + node_json + cert + ',"sign":' + json.dumps(signature) + "}"


# WeChat Pay --------------------------------------------------------------------------------


def wechat_signed_headers(
    platform: KeyPair, serial: str, body: bytes, timestamp: int | None = None, nonce: str | None = None
) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    nonce = nonce or secrets.token_hex(16)
    signature = wx_rsa_sign(platform.private, f"{timestamp}\n{nonce}\n{body.decode()}\n")
    return {
        "Wechatpay-Serial": serial,
        "Wechatpay-Timestamp": str(timestamp),
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": signature,
        "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
    }


def wechat_encrypt(api_v3_key: str, data: dict, associated_data: str = "transaction") -> dict[str, str]:
    """An AEAD_AES_256_GCM resource, cross-checked with the SDK's decryption."""
    nonce = secrets.token_hex(6)  # 12 characters, as WeChat Pay sends
    plaintext = json.dumps(data, ensure_ascii=False)
    ciphertext = AESGCM(api_v3_key.encode()).encrypt(
        nonce.encode(), plaintext.encode(), associated_data.encode()
    )
    resource = {
        "original_type": associated_data,
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(ciphertext).decode(),
        "associated_data": associated_data,
        "nonce": nonce,
    }
    assert wx_aes_decrypt(nonce, resource["ciphertext"], associated_data, api_v3_key) == plaintext
    return resource


def wechat_notification(api_v3_key: str, event_type: str, data: dict, event_id: str | None = None) -> bytes:
    original = "refund" if event_type.startswith("REFUND.") else "transaction"
    body = {
        "id": event_id or "EV-" + secrets.token_hex(12),
        "create_time": "2026-01-05T10:00:00+08:00",
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": "支付成功",
        "resource": wechat_encrypt(api_v3_key, data, original),
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


AUTH_RE = re.compile(r'(\w+)="([^"]*)"')


@dataclass
class FakeWeChatPay:
    """API v3: checks each request's merchant signature, answers signed with the platform key."""

    httpserver: Any
    merchant_keys: KeyPair
    platform_keys: KeyPair
    serial: str
    mchid: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    answers: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.url = self.httpserver.url_for("").rstrip("/")
        routes = [
            ("native", "/v3/pay/transactions/native", "POST"),
            ("query", re.compile(r"^/v3/pay/transactions/out-trade-no/[^/]+$"), "GET"),
            ("close", re.compile(r"^/v3/pay/transactions/out-trade-no/[^/]+/close$"), "POST"),
            ("refund", "/v3/refund/domestic/refunds", "POST"),
            ("refund_query", re.compile(r"^/v3/refund/domestic/refunds/[^/]+$"), "GET"),
            ("transfer", "/v3/fund-app/mch-transfer/transfer-bills", "POST"),
            (
                "transfer_query",
                re.compile(r"^/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/[^/]+$"),
                "GET",
            ),
            (
                "transfer_cancel",
                re.compile(r"^/v3/fund-app/mch-transfer/transfer-bills/out-bill-no/[^/]+/cancel$"),
                "POST",
            ),
        ]
        for name, uri, method in routes:
            self.httpserver.expect_request(uri, method=method).respond_with_handler(
                lambda request, name=name: self.handle(name, request)
            )

    def handle(self, name: str, request: Request) -> Response:
        body = request.get_data()
        header = request.headers.get("Authorization", "")
        scheme, _, params = header.partition(" ")
        auth = dict(AUTH_RE.findall(params))
        path = request.full_path.rstrip("?") if request.query_string else request.path
        message = f"{request.method}\n{path}\n{auth.get('timestamp')}\n{auth.get('nonce_str')}\n".encode()
        message += body + b"\n"
        if scheme != "WECHATPAY2-SHA256-RSA2048" or not self.merchant_keys.verify(
            message, auth.get("signature", "")
        ):
            self.errors.append(f"request signature of {name} invalid: {header!r}")
            return Response('{"code":"SIGN_ERROR","message":"bad signature"}', status=401)
        if auth.get("mchid") != self.mchid:
            self.errors.append(f"mchid {auth.get('mchid')!r}")
        self.requests.append(
            {
                "name": name,
                "path": path,
                "auth": auth,
                "json": json.loads(body) if body else None,
                "content_type": request.headers.get("Content-Type"),
                "serial": request.headers.get("Wechatpay-Serial"),
            }
        )
        answer = self.answers[name]
        status, data = answer(self.requests[-1]) if callable(answer) else answer
        return self.signed_response(status, data)

    def signed_response(self, status: int, data: dict | None, key: KeyPair | None = None) -> Response:
        body = json.dumps(data, separators=(",", ":")).encode() if data is not None else b""
        headers = wechat_signed_headers(key or self.platform_keys, self.serial, body)
        return Response(body, status=status, headers=headers, content_type="application/json")


# PayPal ------------------------------------------------------------------------------------


def paypal_transmission(
    paypal_keys: KeyPair, webhook_id: str, body: bytes, transmission_id: str | None = None
) -> dict[str, str]:
    """The headers PayPal sends with a webhook, signed the way PayPal signs them."""
    transmission_id = transmission_id or secrets.token_hex(16)
    transmission_time = "2026-01-05T10:00:00Z"
    message = f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}".encode()
    return {
        "Paypal-Auth-Algo": "SHA256withRSA",
        "Paypal-Cert-Url": "https://api.paypal.com/v1/notifications/certs/CERT-360caa42",
        "Paypal-Transmission-Id": transmission_id,
        "Paypal-Transmission-Sig": paypal_keys.sign(message),
        "Paypal-Transmission-Time": transmission_time,
    }


class FakePayPal:
    """PayPal REST: OAuth2 client credentials, orders, captures, refunds, payouts, verification."""

    def __init__(self, httpserver, client_id: str, secret: str, paypal_keys: KeyPair) -> None:
        self.client_id = client_id
        self.secret = secret
        self.paypal_keys = paypal_keys
        self.url = httpserver.url_for("").rstrip("/")
        self.requests: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.answers: dict[str, Any] = {}
        self.tokens_issued = 0
        self.valid_tokens: set[str] = set()
        httpserver.expect_request("/v1/oauth2/token", method="POST").respond_with_handler(self.token)
        routes = [
            ("create_order", "/v2/checkout/orders", "POST"),
            ("get_order", re.compile(r"^/v2/checkout/orders/[^/]+$"), "GET"),
            ("capture", re.compile(r"^/v2/checkout/orders/[^/]+/capture$"), "POST"),
            ("refund", re.compile(r"^/v2/payments/captures/[^/]+/refund$"), "POST"),
            ("get_refund", re.compile(r"^/v2/payments/refunds/[^/]+$"), "GET"),
            ("payouts", "/v1/payments/payouts", "POST"),
            ("get_payouts", re.compile(r"^/v1/payments/payouts/[^/]+$"), "GET"),
            ("verify", "/v1/notifications/verify-webhook-signature", "POST"),
        ]
        for name, uri, method in routes:
            httpserver.expect_request(uri, method=method).respond_with_handler(
                lambda request, name=name: self.handle(name, request)
            )

    def token(self, request: Request) -> Response:
        expected = "Basic " + base64.b64encode(f"{self.client_id}:{self.secret}".encode()).decode()
        if (
            request.headers.get("Authorization") != expected
            or request.form.get("grant_type") != "client_credentials"
        ):
            self.errors.append("token request without the client credentials")
            return Response('{"error":"invalid_client"}', status=401, content_type="application/json")
        self.tokens_issued += 1
        token = f"A21AA-{self.tokens_issued}-{secrets.token_hex(8)}"
        self.valid_tokens.add(token)
        body = {"access_token": token, "token_type": "Bearer", "expires_in": 32400}
        return Response(json.dumps(body), content_type="application/json")

    def handle(self, name: str, request: Request) -> Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.valid_tokens:
            return Response('{"error":"invalid_token"}', status=401, content_type="application/json")
        raw = request.get_data()
        entry = {
            "name": name,
            "path": request.path,
            "raw": raw,
            "json": json.loads(raw) if raw else None,
            "request_id": request.headers.get("PayPal-Request-Id"),
            "content_type": request.headers.get("Content-Type"),
        }
        self.requests.append(entry)
        if name == "verify":
            return self.verify(raw)
        answer = self.answers[name]
        status, data = answer(entry) if callable(answer) else answer
        return Response(json.dumps(data), status=status, content_type="application/json")

    def verify(self, raw: bytes) -> Response:
        """PayPal's check: the signature over id|time|webhook_id|crc32 of the event bytes as received."""
        marker = b',"webhook_event":'
        head, sep, rest = raw.partition(marker)
        if not sep or not rest.endswith(b"}"):
            self.errors.append("verify body not in the expected shape")
            return Response('{"name":"VALIDATION_ERROR"}', status=400, content_type="application/json")
        fields = json.loads(head + b"}")
        event = rest[:-1]
        json.loads(event)  # must be valid JSON on its own
        message = (
            f"{fields['transmission_id']}|{fields['transmission_time']}|{fields['webhook_id']}|{zlib.crc32(event)}"
        ).encode()
        ok = self.paypal_keys.verify(message, fields["transmission_sig"])
        body = {"verification_status": "SUCCESS" if ok else "FAILURE"}
        return Response(json.dumps(body), content_type="application/json")
