"""Provider payloads in the shapes of their public documentation (WhatsApp Cloud API webhooks, Twilio SMS
webhooks and status callbacks, Telegram ``Update`` objects, our gateway's JSON), and their signatures."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from redes.messaging.channels.gateway.inbound import sign as gateway_sign
from redes.messaging.channels.twilio.inbound import sign as twilio_sign
from redes.messaging.channels.whatsapp.inbound import sign as whatsapp_sign

PHONE_NUMBER_ID = "106540352242922"
WABA_ID = "102290129340398"


def whatsapp(value: dict) -> dict:
    """The envelope of every WhatsApp webhook: entry[].changes[].value."""
    base = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID},
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"value": {**base, **value}, "field": "messages"}]}],
    }


def wa_message(message: dict, wa_id: str = "5218112345678", name: str = "Sheena Nelson") -> dict:
    return whatsapp(
        {
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
            "messages": [{"from": wa_id, "timestamp": "1767225600", **message}],
        }
    )


def wa_text(
    body: str = "Hola", wamid: str = "wamid.HBgLMTY0NjcwNDM1OTUVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=", **kw
):
    return wa_message({"id": wamid, "type": "text", "text": {"body": body}}, **kw)


def wa_button_reply(wamid="wamid.BUTTON1", reply_id="1", title="Reportar"):
    return wa_message(
        {
            "id": wamid,
            "type": "interactive",
            "context": {"from": "15550783881", "id": "wamid.CONTEXT"},
            "interactive": {"type": "button_reply", "button_reply": {"id": reply_id, "title": title}},
        }
    )


def wa_list_reply(wamid="wamid.LIST1", reply_id="2", title="Mis solicitudes"):
    return wa_message(
        {
            "id": wamid,
            "type": "interactive",
            "interactive": {
                "type": "list_reply",
                "list_reply": {"id": reply_id, "title": title, "description": "Estado de mis solicitudes"},
            },
        }
    )


def wa_template_button(wamid="wamid.QUICK1"):
    return wa_message({"id": wamid, "type": "button", "button": {"payload": "ENTERADO", "text": "Enterado"}})


def wa_location(wamid="wamid.LOC1"):
    return wa_message(
        {
            "id": wamid,
            "type": "location",
            "location": {
                "latitude": 25.7951,
                "longitude": -100.3256,
                "name": "Plaza principal",
                "address": "Av. Raúl Caballero, Escobedo",
            },
        }
    )


def wa_sticker(wamid="wamid.STICKER1"):
    return wa_message(
        {
            "id": wamid,
            "type": "sticker",
            "sticker": {"mime_type": "image/webp", "sha256": "abc=", "id": "1228", "animated": False},
        }
    )


def wa_audio(wamid="wamid.AUDIO1"):
    return wa_message(
        {
            "id": wamid,
            "type": "audio",
            "audio": {"mime_type": "audio/ogg; codecs=opus", "sha256": "x", "id": "9"},
        }
    )


def wa_reaction(wamid="wamid.REACT1"):
    return wa_message({"id": wamid, "type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": "👍"}})


def wa_unsupported(wamid="wamid.UNSUP1"):
    return wa_message(
        {
            "id": wamid,
            "type": "unsupported",
            "errors": [{"code": 131051, "title": "Message type unknown", "message": "Message type unknown"}],
        }
    )


def wa_status(wamid="wamid.OUT1", status="delivered", reference="17", errors=None):
    item = {"id": wamid, "status": status, "timestamp": "1767225601", "recipient_id": "5218112345678"}
    if reference:
        item["biz_opaque_callback_data"] = reference
    if errors:
        item["errors"] = errors
    elif status != "read":
        item["conversation"] = {"id": "CONVERSATION_ID", "origin": {"type": "utility"}}
        item["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "utility"}
    return whatsapp({"statuses": [item]})


def dumps(payload) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode()


def wa_headers(body: bytes, secret: str) -> dict:
    return {"HTTP_X_HUB_SIGNATURE_256": whatsapp_sign(body, secret)}


# ---- Twilio (application/x-www-form-urlencoded)
TWILIO_SID = "AC" + "1" * 32


def twilio_sms(body="Hola", sid="SM" + "a" * 32, from_="+528112345678", num_media="0", **extra) -> dict:
    params = {
        "ToCountry": "MX",
        "ToState": "NL",
        "SmsMessageSid": sid,
        "NumMedia": num_media,
        "ToCity": "",
        "FromZip": "",
        "SmsSid": sid,
        "FromState": "NL",
        "SmsStatus": "received",
        "FromCity": "MONTERREY",
        "Body": body,
        "FromCountry": "MX",
        "To": "+528100000000",
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": TWILIO_SID,
        "From": from_,
        "ApiVersion": "2010-04-01",
    }
    params.update(extra)
    return params


def twilio_status(sid="SM" + "b" * 32, status="delivered", error_code=None) -> dict:
    params = {
        "AccountSid": TWILIO_SID,
        "ApiVersion": "2010-04-01",
        "From": "+528100000000",
        "MessageSid": sid,
        "MessageStatus": status,
        "SmsSid": sid,
        "SmsStatus": status,
        "To": "+528112345678",
    }
    if error_code:
        params["ErrorCode"] = str(error_code)
    return params


def twilio_headers(url: str, params: dict, auth_token: str) -> dict:
    return {"HTTP_X_TWILIO_SIGNATURE": twilio_sign(url, params, auth_token)}


def form(params: dict) -> str:
    return urlencode(params)


# ---- Telegram
def tg_text(text="Hola", update_id=10000, chat_id=1111111):
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1365,
            "from": {"id": chat_id, "is_bot": False, "first_name": "Ana", "language_code": "es"},
            "chat": {"id": chat_id, "first_name": "Ana", "type": "private"},
            "date": 1767225600,
            "text": text,
        },
    }


def tg_location(update_id=10001, chat_id=1111111):
    update = tg_text(update_id=update_id, chat_id=chat_id)
    del update["message"]["text"]
    update["message"]["location"] = {"latitude": 25.7951, "longitude": -100.3256}
    return update


def tg_sticker(update_id=10002, chat_id=1111111):
    update = tg_text(update_id=update_id, chat_id=chat_id)
    del update["message"]["text"]
    update["message"]["sticker"] = {"file_id": "CAAC", "file_unique_id": "AgAD", "width": 512, "height": 512}
    return update


def tg_callback(update_id=10003, chat_id=1111111, data="2"):
    return {
        "update_id": update_id,
        "callback_query": {
            "id": "4382bfdwdsb323b2d9",
            "from": {"id": chat_id, "is_bot": False, "first_name": "Ana"},
            "message": {
                "message_id": 1366,
                "chat": {"id": chat_id, "type": "private"},
                "date": 1767225600,
                "text": "Menú",
            },
            "chat_instance": "-1",
            "data": data,
        },
    }


def tg_headers(secret: str) -> dict:
    return {"HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN": secret}


# ---- our gateway
def gw_messages(*messages) -> dict:
    return {"messages": list(messages)}


def gw_headers(body: bytes, secret: str) -> dict:
    return {"HTTP_X_SIGNATURE": gateway_sign(body, secret)}
