"""The API keeps its English codes; with Accept-Language: zh-Hans people read Chinese."""

import pytest

from tests.api.conftest import Api

pytestmark = pytest.mark.django_db
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-Hans"}
BAD_PAYMENT = {
    "reference": "ZH-1",
    "amount": "12.345",
    "currency": "CNY",
    "method": "card",
    "beneficiary_name": "张伟",
    "beneficiary_account": "4000000000001234",
}
NAMELESS = {**BAD_PAYMENT, "amount": "12.34"}
del NAMELESS["beneficiary_name"]


def test_validation_problem_in_chinese_keeps_english_codes(key_a):
    answer = Api(key_a).post("/api/v1/payments", BAD_PAYMENT, **ZH)
    assert answer.status_code == 422
    assert answer["Content-Language"] == "zh-hans"
    body = answer.json()
    assert (body["code"], body["type"].rsplit("/", 1)[1]) == ("validation_error", "validation_error")
    assert body["title"] == "校验错误"
    assert body["detail"] == "请求中有无效字段。"
    assert body["errors"] == [
        {"field": "amount", "code": "too_many_decimals", "message": "CNY 金额最多允许 2 位小数。"}
    ]
    nameless = Api(key_a).post("/api/v1/payments", NAMELESS, **ZH).json()
    assert nameless["errors"] == [
        {"field": "beneficiary_name", "code": "required", "message": "此字段为必填项。"}
    ]


def test_the_same_problem_in_english(key_a):
    body = Api(key_a).post("/api/v1/payments", BAD_PAYMENT, HTTP_ACCEPT_LANGUAGE="en").json()
    assert (body["title"], body["detail"]) == ("Validation error", "The request has invalid fields.")
    assert body["errors"][0]["message"] == "CNY amounts allow at most 2 decimal places."


def test_authentication_and_not_found_problems_in_chinese(key_a):
    unknown_key = Api("pdk_not-a-key").get("/api/v1/payments", **ZH).json()
    assert (unknown_key["code"], unknown_key["title"], unknown_key["detail"]) == (
        "invalid_api_key",
        "API 密钥无效",
        "API 密钥无效或已被吊销。",
    )
    missing = Api(key_a).get("/api/v1/payments/pay_doesnotexist", **ZH).json()
    assert (missing["code"], missing["title"]) == ("not_found", "未找到")
    assert missing["detail"] == "没有此 ID 的付款。"
    no_route = Api(key_a).get("/api/v1/nothing-here", **ZH).json()
    assert (no_route["code"], no_route["title"]) == ("not_found", "未找到")
