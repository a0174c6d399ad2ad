"""Drives a RabbitMQ server with pika for tests/amqp_server.rs and prints what the client saw
as one JSON object: the queue it declared, the bodies it published and received, whether a
basic.get found the queue empty, and the reply code and text of the channel the broker closed.

usage: client.py PORT
"""
import json
import sys

import pika

port = int(sys.argv[1])
truth = {}
conn = pika.BlockingConnection(
    # A broker that blocks publishers (its disk or memory alarm) closes this connection after
    # 60 s with ConnectionBlockedTimeout, which names the cause, instead of waiting forever.
    pika.ConnectionParameters(
        host="127.0.0.1", port=port, heartbeat=0, blocked_connection_timeout=60
    )
)
ch = conn.channel()
q = ch.queue_declare(queue="pb_test")
truth["queue"] = q.method.queue
truth["declared_messages"] = q.method.message_count

small = b"hello amqp"
ch.basic_publish(
    exchange="",
    routing_key="pb_test",
    body=small,
    properties=pika.BasicProperties(
        content_type="text/plain", delivery_mode=2, headers={"origin": "pika"}
    ),
)
method, props, body = ch.basic_get(queue="pb_test", auto_ack=True)
truth["got"] = body.decode()
truth["got_remaining"] = method.message_count
method, props, body = ch.basic_get(queue="pb_test", auto_ack=True)
truth["get_empty"] = method is None

# A body larger than the negotiated frame size: sent and delivered over several body frames.
big = b"x" * 300000
truth["big_len"] = len(big)
ch.basic_publish(
    exchange="",
    routing_key="pb_test",
    body=big,
    properties=pika.BasicProperties(content_type="text/plain"),
)
delivered = []


def on_message(channel, method, props, body):
    delivered.append((method.delivery_tag, len(body), method.consumer_tag))
    channel.basic_ack(method.delivery_tag)


tag = ch.basic_consume(queue="pb_test", on_message_callback=on_message)
for _ in range(50):
    if delivered:
        break
    conn.process_data_events(time_limit=0.2)
truth["delivered"] = [{"delivery_tag": d, "len": n, "consumer_tag": t} for d, n, t in delivered]
ch.basic_cancel(tag)

# A passive declare of a queue that does not exist: the broker closes the channel.
try:
    ch.queue_declare(queue="missing_q", passive=True)
    truth["closed"] = None
except pika.exceptions.ChannelClosedByBroker as e:
    truth["closed"] = {"code": e.reply_code, "text": e.reply_text}
conn.close()
print(json.dumps(truth))
