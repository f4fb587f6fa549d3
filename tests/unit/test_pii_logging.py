"""core.pii detection/masking and the PII filter of core.logging, down to the JSON lines written."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from core.errors import ConfigError
from core.logging import configure_logging, get_logger, mask_pii
from core.pii import cn_id_valid, luhn_valid, mask_name, mask_text, mask_value

pytestmark = pytest.mark.unit

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def make_cn_id(first17: str) -> str:
    """Append the ISO 7064 MOD 11-2 check character."""
    return first17 + "10X98765432"[sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True)) % 11]


VALID_ID = make_cn_id("11010519491231002")  # Beijing, born 1949-12-31 -> check char X
VALID_ID_2 = make_cn_id("44030419900307123")  # Shenzhen, born 1990-03-07
BAD_CHECK_ID = VALID_ID_2[:-1] + ("0" if VALID_ID_2[-1] != "0" else "1")
BAD_DATE_ID = make_cn_id("44030419900230123")  # 30 February, checksum right
CARD = "6222021234567890128"  # UnionPay, Luhn-valid
CARD_BAD_LUHN = "6222021234567890123"
VISA = "4111111111111111"


# --------------------------------------------------------------------------------------------- detection


def test_luhn() -> None:
    assert luhn_valid(VISA) and luhn_valid(CARD) and luhn_valid("4111 1111-1111 1111") and luhn_valid("79927398713")
    assert not luhn_valid(CARD_BAD_LUHN) and not luhn_valid("4111111111111112")
    assert not luhn_valid("") and not luhn_valid("0") and not luhn_valid("4111x11111111111")


def test_cn_id() -> None:
    assert VALID_ID.endswith("X") and cn_id_valid(VALID_ID) and cn_id_valid(VALID_ID.lower())
    assert cn_id_valid(VALID_ID_2)
    assert not cn_id_valid(BAD_CHECK_ID)
    assert not cn_id_valid(BAD_DATE_ID)
    assert not cn_id_valid(make_cn_id("11010518491231002"))  # born 1849
    assert not cn_id_valid(VALID_ID[:-1]) and not cn_id_valid("1101051949123100AX")


# ------------------------------------------------------------------------------------------------ masking


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"card {CARD} ok", "card 622202*********0128 ok"),
        (f"卡号{CARD}。", "卡号622202*********0128。"),
        ("visa 4111 1111 1111 1111.", "visa 411111******1111."),
        ("visa 4111-1111-1111-1111", "visa 411111******1111"),
        ("ids 7 4111 1111 1111 1111 end", "ids 7 411111******1111 end"),
        (f"id {VALID_ID}", "id 110*************2X"),
        (f"身份证{VALID_ID_2}", f"身份证440*************{VALID_ID_2[-2:]}"),
        ("call me 13800138000", "call me *******8000"),
        ("+8613800138000", "+*********8000"),
        ("0086 138 0013 8000", "**** *** **** 8000"),
        ("138-0013-8000", "***-****-8000"),
        ("US +1 415-555-0100.", "US +* ***-***-0100."),
        ("UK +447911123456", "UK +********3456"),
        ("(415) 555-0100", "(***) ***-0100"),
        ("座机 010-62345678", "座机 ***-****5678"),
        ("我的账号是6212 3456 7890 1234 567", "我的账号是***************4567"),
        ("转到账户：44050123456789012345", "转到账户：****************2345"),
        ("account number 1234567890123", "account number *********0123"),
        ("my a/c 12345678", "my a/c ****5678"),
    ],
)
def test_mask_text_masks(text: str, expected: str) -> None:
    assert mask_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        f"card {CARD_BAD_LUHN}",
        "4111111111111112",
        f"id {BAD_CHECK_ID}",
        f"id {BAD_DATE_ID}",
        "amount 12345.67 CNY, 1,234,567.89, ¥98000",
        "duration 30000 ms, 1718000000000 ms, 1718000000000123 us, epoch 1718000000",
        "at 2024-06-10T12:30:45.123456+08:00 stamp 20240610123045123",
        "uuid 123e4567-e89b-12d3-a456-426614174000 and 00000000-0000-4000-8000-000000000000",
        "call-3f2a9c1d44e0 call-13800138000x trace 4bf92f3577b34da6a3ce929d0e0e4736",
        "score 0.4111111111111111, x=4111111111111111abc, order A4111111111111111",
        "version 1.2.3, ip 10.0.0.1, port 5060, qty 3",
        "你好，我想查询余额",
        "账户余额 12345678 元, account balance 1234567890",
    ],
)
def test_mask_text_leaves_ordinary_text(text: str) -> None:
    assert mask_text(text) == text


def test_mask_name() -> None:
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳娜娜") == "欧***"
    assert mask_name("John Doe") == "J*** D**"
    assert mask_name("") == ""


def test_mask_value_structured_fields() -> None:
    data: dict[str, Any] = {
        "customer_name": "张三",
        "name_en": "John Doe",
        "callerName": "李四",
        "nested": [{"full_name": "王小明", "first_name": "Ann", "last_name": "Lee"}],
        "username": "agent.wang",
        "phone": "any text",
        "phones": ["13800138000", 13800138000],
        "caller": {"uri": "sip:+8613800138000@pbx", "display": "x"},
        "callee": None,
        "id_number": "not-even-an-id",
        "card_number": 1234,
        "note": f"card {CARD}",
        "amount": 1234567.89,
        "amount_cents": 123456789,
        "ts_ms": 1718000000000,
        "account": int(CARD),
        "ok": True,
        "pair": ("13800138000", 5),
    }
    out = mask_value(data)
    assert out == {
        "customer_name": "张*",
        "name_en": "J*** D**",
        "callerName": "李*",
        "nested": [{"full_name": "王**", "first_name": "A**", "last_name": "L**"}],
        "username": "agent.wang",
        "phone": "***",
        "phones": ["***", "***"],
        "caller": {"uri": "***", "display": "***"},
        "callee": None,
        "id_number": "***",
        "card_number": "***",
        "note": "card 622202*********0128",
        "amount": 1234567.89,
        "amount_cents": 123456789,
        "ts_ms": 1718000000000,
        "account": "622202*********0128",
        "ok": True,
        "pair": ("*******8000", 5),
    }


def test_mask_value_objects_and_cycles() -> None:
    class Customer:
        def __str__(self) -> str:
            return f"Customer(card={VISA})"

    assert mask_value(Customer()) == "Customer(card=411111******1111)"
    loop: list[Any] = []
    loop.append(loop)
    assert "[truncated]" in json.dumps(mask_value(loop))


def test_mask_pii_processor_masks_event_and_fields() -> None:
    ed = {"event": f"lookup {VISA}", "phone": "13800138000", "call_id": "call-3f2a"}
    assert mask_pii(None, "info", ed) == {"event": "lookup 411111******1111", "phone": "***", "call_id": "call-3f2a"}


# ------------------------------------------------------------------------------------------- log output

PII = ("13800138000", "8613800138000", VISA, CARD, VALID_ID, "张三", "John Doe", "415-555-0100")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)
    logging.captureWarnings(False)
    structlog.reset_defaults()


def _emit_everything() -> None:
    log = get_logger("voxdesk.test")
    log.info(
        "caller identified",
        call_id="call-3f2a9c",
        phone="13800138000",
        customer_name="张三",
        name_en="John Doe",
        username="agent.wang",
        note=f"customer said card {VISA} and id {VALID_ID}",
        amount=12345.67,
        duration_ms=30000,
    )
    log.warning(f"transfer for {CARD}")  # a non-static message still gets masked
    logging.getLogger("uvicorn.access").info('%s - "GET /customers/%s HTTP/1.1" 200', "10.0.0.1", "+8613800138000")
    logging.getLogger("sqlalchemy.engine").warning(
        "params %r", ("13800138000", "+1 415-555-0100"), extra={"phone": "x"}
    )
    try:
        raise ValueError(f"bad id {VALID_ID}")
    except ValueError:
        log.exception("lookup failed", card_number=CARD)
    log.debug("not shown at INFO", phone="13800138000")


def test_json_logs_contain_no_pii(capsys: pytest.CaptureFixture[str], restore_logging: None) -> None:
    configure_logging("info", json_logs=True, mask_pii=True)
    _emit_everything()
    captured = capsys.readouterr()
    assert captured.out == ""  # logs go to stderr
    lines = [json.loads(line) for line in captured.err.splitlines()]
    assert len(lines) == 5
    first = lines[0]
    assert first["event"] == "caller identified" and first["level"] == "info" and first["logger"] == "voxdesk.test"
    assert first["timestamp"].endswith("Z")
    assert first["phone"] == "***" and first["customer_name"] == "张*" and first["name_en"] == "J*** D**"
    assert first["username"] == "agent.wang" and first["call_id"] == "call-3f2a9c"
    assert first["amount"] == 12345.67 and first["duration_ms"] == 30000
    assert first["note"] == "customer said card 411111******1111 and id 110*************2X"
    assert lines[1]["event"] == "transfer for 622202*********0128"
    assert lines[2]["logger"] == "uvicorn.access" and "+*********8000" in lines[2]["event"]
    assert lines[3]["phone"] == "***"
    assert lines[4]["card_number"] == "***" and "ValueError: bad id 110*************2X" in lines[4]["exception"]
    for secret in PII:
        assert secret not in captured.err


def test_console_logs_are_masked_too(capsys: pytest.CaptureFixture[str], restore_logging: None) -> None:
    configure_logging("INFO", json_logs=False, mask_pii=True)
    _emit_everything()
    err = capsys.readouterr().err
    assert "caller identified" in err and "agent.wang" in err
    for secret in PII:
        assert secret not in err


def test_without_mask_pii_the_data_is_written(capsys: pytest.CaptureFixture[str], restore_logging: None) -> None:
    configure_logging("DEBUG", json_logs=True, mask_pii=False)
    _emit_everything()
    err = capsys.readouterr().err
    assert "13800138000" in err and "张三" in err and "not shown at INFO" in err


def test_library_stream_handlers_are_rerouted(capsys: pytest.CaptureFixture[str], restore_logging: None) -> None:
    noisy = logging.getLogger("some.library")
    noisy.addHandler(logging.StreamHandler())
    noisy.propagate = False
    try:
        configure_logging("INFO", json_logs=True, mask_pii=True)
        noisy.warning("user %s", "13800138000")
        err = capsys.readouterr().err
        assert "13800138000" not in err and json.loads(err)["event"] == "user *******8000"
    finally:
        for h in list(noisy.handlers):
            noisy.removeHandler(h)


def test_unknown_level_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        configure_logging("LOUD", json_logs=True, mask_pii=True)
