"""Request models per endpoint (docs/protocol.md §3 field rules), and pydantic errors -> our codes.

PHP clients send numbers as JSON numbers or numeric strings, and strings as numbers: every
field accepts both (`Str` and pydantic's lax int). Unknown extra fields are ignored.
The first failing field decides the answer: 10006 names a missing field, 10007 a malformed
one together with its rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .errors import SandboxError, invalid, missing
from .inputs import INT32_MAX


def _num_to_str(v: Any) -> Any:
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return v.strip() if isinstance(v, str) else v


# Numbers read as their digits first. Placed after a field's constraints (`Annotated[str,
# Field(...), AsText]`) so pydantic's core checks them: a constraint placed after a validator
# is checked by a Python wrapper instead, a cost on every request (a fifth of a 05's
# validation).
AsText = BeforeValidator(_num_to_str)
Str = Annotated[str, AsText]

# Human-readable rules, quoted in 10007 messages (the pydantic text is for programmers).
RULES = {
    "user_mobile": "must start with 8 and have 9-13 digits, without 0 or +62 (e.g. 81234567890)",
    "user_idcard": "must be a 16-digit NIK",
    "user_name": "must be letters and spaces only",
    "order_no": "must be 10-32 characters of A-Z, a-z, 0-9, _ or -",
    "bank_card": "must be 9-16 digits",
    "application_amount": "must be a whole number of rupiah >= 100000 (at most 2147483647)",
    "application_term": "must be a whole number >= 1",
    "term_unit": "must be 1 (days) or 2 (months)",
    "month_income": "must be 5-9 digits with a non-zero first digit",
    "emergs": "must list at least 2 emergency contacts",
    "is_reloan": "must be 0 or 1",
    "product_id": "must be a non-empty product id",
}

Mobile = Annotated[str, Field(pattern=r"^8\d{8,12}$", max_length=13), AsText]
IdCard = Annotated[str, Field(pattern=r"^\d{16}$", max_length=16), AsText]
Name = Annotated[str, Field(pattern=r"^[A-Za-z ]+$", max_length=100), AsText]
OrderNo = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{10,32}$", max_length=32), AsText]
BankCardNo = Annotated[str, Field(pattern=r"^\d{9,16}$", max_length=16), AsText]
ProductId = Annotated[str, Field(min_length=1, max_length=64), AsText]
Amount = Annotated[int, Field(ge=100000, le=INT32_MAX)]
Term = Annotated[int, Field(ge=1, le=3650)]
Unit = Annotated[int, Field(ge=1, le=2)]


# The spec's enumerations: an integer 1..N.
OneTo2 = Annotated[int, Field(ge=1, le=2)]
OneTo3 = Annotated[int, Field(ge=1, le=3)]
OneTo4 = Annotated[int, Field(ge=1, le=4)]
OneTo6 = Annotated[int, Field(ge=1, le=6)]
OneTo8 = Annotated[int, Field(ge=1, le=8)]
OneTo10 = Annotated[int, Field(ge=1, le=10)]
OneTo11 = Annotated[int, Field(ge=1, le=11)]


class Req(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class ProductReq(Req):
    product_id: ProductId


class PrecheckReq(ProductReq):
    user_mobile: Mobile
    user_idcard: IdCard
    user_name: Name | None = None


class AmountReq(ProductReq):
    user_mobile: Mobile
    user_idcard: IdCard | None = None


class InterestReq(AmountReq):
    application_amount: Amount
    application_term: Term
    term_unit: Unit


class BasicInfo(Req):
    user_type: OneTo3
    idcard_image_front: Annotated[str, Field(min_length=1, max_length=1000), AsText]
    idcard_image_hand: Annotated[str, Field(min_length=1, max_length=1000), AsText]
    education: OneTo6
    loan_remark: OneTo11
    month_income: Annotated[str, Field(pattern=r"^[1-9]\d{4,8}$"), AsText]
    religion: OneTo6


class OrderInfo(Req):
    order_no: OrderNo
    application_amount: Amount
    application_term: Term
    term_unit: Unit
    product_id: ProductId
    user_name: Name
    user_mobile: Mobile
    user_idcard: IdCard


class BasicInfoReq(ProductReq):
    device_ip: Annotated[str, Field(max_length=64), AsText] = ""
    basic_info: BasicInfo
    order_info: OrderInfo
    is_reloan: Annotated[int, Field(ge=0, le=1)] = 0


class Area(Req):
    province: Annotated[str, Field(min_length=1, max_length=100), AsText]
    city: Annotated[str, Field(min_length=1, max_length=100), AsText]
    district: Annotated[str, Field(max_length=100), AsText] = ""
    village: Annotated[str, Field(max_length=100), AsText] = ""
    detail_address: Annotated[str, Field(max_length=500), AsText] = ""


class Emerg(Req):
    emergs_name: Annotated[str, Field(min_length=1, max_length=100), AsText]
    emergs_phone: Annotated[str, Field(pattern=r"^\+?\d{8,15}$"), AsText]
    emergs_relation: OneTo8


class SupplementInfo(Req):
    is_charge: int | None = None
    birthday: Annotated[str, Field(max_length=20), AsText] = ""
    marital_status: OneTo4
    sex: OneTo2
    face_photo_image: list[Str] = []
    pass_face_photo: int = 1
    same_person: int = 1
    confidence_score: Str | float | None = None
    work_type: OneTo10
    company: Annotated[str, Field(max_length=200), AsText] = ""
    area: Area
    emergs: Annotated[list[Emerg], Field(min_length=2, max_length=20)]
    device_info: Any = None  # docs/protocol.md §3: free-form, stored as given


class OrderInfoSupplement(Req):
    order_no: OrderNo
    application_amount: Amount | None = None
    application_term: Term | None = None
    term_unit: Unit | None = None
    user_mobile: Mobile | None = None


class SupplementReq(ProductReq):
    device_ip: Annotated[str, Field(max_length=64), AsText] = ""
    supplement_info: SupplementInfo
    order_info: OrderInfoSupplement


class BankListReq(ProductReq):
    action_type: OneTo2


class OrderReq(ProductReq):
    order_no: OrderNo


class BindBankReq(OrderReq):
    bank_card: BankCardNo
    user_name: Name
    bank_code: Annotated[str, Field(min_length=1, max_length=32), AsText]


class ConfirmReq(OrderReq):
    application_amount: Amount
    application_term: Term
    term_unit: Unit


class RepayDetailReq(OrderReq):
    repay_method: OneTo2
    method_code: Annotated[str, Field(min_length=1, max_length=16), AsText]
    repay_type: OneTo2
    delay_term: Annotated[int, Field(ge=1, le=365)] | None = None


class DelayInterestReq(OrderReq):
    delay_term: Annotated[int, Field(ge=1, le=365)] | None = None


def _field_name(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")


def _translate(err: Mapping[str, Any]) -> SandboxError:
    loc = tuple(err["loc"])
    name = _field_name(loc)
    if err["type"] == "missing":
        return missing(name)
    leaf = next((str(p) for p in reversed(loc) if not isinstance(p, int)), name)
    rule = RULES.get(leaf)
    if rule is None or err["type"] in ("model_type", "list_type", "dict_type"):
        rule = err["msg"][0].lower() + err["msg"][1:]
    return invalid(name, rule)


def parse(model: type[Req], payload: dict[str, Any]) -> Any:
    try:
        return model.model_validate(payload)
    except ValidationError as e:
        errors = e.errors(include_url=False)
        # A missing field is the more useful first answer; then the first malformed one.
        errors.sort(key=lambda er: er["type"] != "missing")
        raise _translate(errors[0]) from None
