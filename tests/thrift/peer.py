"""A Thrift server and client for tests/thrift_server.rs, on the `thrift` package from PyPI.

No generated code: the server's processor and the client write and read the messages with the
package's protocol objects directly (writeMessageBegin, writeFieldBegin, ...), for the service
of calc.thrift beside this file.

    peer.py server PROTOCOL TRANSPORT PORT   # serves until killed; prints "ready" when listening
    peer.py client PROTOCOL TRANSPORT PORT   # runs its calls; prints one JSON line per call

PROTOCOL is binary or compact, TRANSPORT framed or buffered.
"""

import json
import sys

from thrift.Thrift import TApplicationException, TMessageType, TType
from thrift.protocol import TBinaryProtocol, TCompactProtocol
from thrift.transport import TSocket, TTransport


def protocol(name, trans):
    if name == "binary":
        return TBinaryProtocol.TBinaryProtocol(trans)
    return TCompactProtocol.TCompactProtocol(trans)


def transport(name, sock):
    if name == "framed":
        return TTransport.TFramedTransport(sock)
    return TTransport.TBufferedTransport(sock)


def read_value(p, t):
    if t == TType.BOOL:
        return p.readBool()
    if t == TType.BYTE:
        return p.readByte()
    if t == TType.I16:
        return p.readI16()
    if t == TType.I32:
        return p.readI32()
    if t == TType.I64:
        return p.readI64()
    if t == TType.DOUBLE:
        return p.readDouble()
    if t == TType.STRING:
        return p.readBinary().decode("utf-8", "replace")
    if t == TType.STRUCT:
        return read_struct(p)
    if t in (TType.LIST, TType.SET):
        et, n = p.readListBegin() if t == TType.LIST else p.readSetBegin()
        v = [read_value(p, et) for _ in range(n)]
        p.readListEnd() if t == TType.LIST else p.readSetEnd()
        return v
    if t == TType.MAP:
        kt, vt, n = p.readMapBegin()
        v = {}
        for _ in range(n):
            k = read_value(p, kt)
            v[k] = read_value(p, vt)
        p.readMapEnd()
        return v
    raise ValueError("type %d" % t)


def read_struct(p):
    p.readStructBegin()
    out = {}
    while True:
        _, t, fid = p.readFieldBegin()
        if t == TType.STOP:
            break
        out[fid] = read_value(p, t)
        p.readFieldEnd()
    p.readStructEnd()
    return out


def write_struct(p, fields):
    """fields: (id, type, value) with value already suited to the type's writer."""
    p.writeStructBegin("s")
    for fid, t, v in fields:
        p.writeFieldBegin("f", t, fid)
        if t == TType.I32:
            p.writeI32(v)
        elif t == TType.STRING:
            p.writeBinary(v.encode())
        elif t == TType.STRUCT:
            write_struct(p, v)
        elif t == TType.LIST:
            p.writeListBegin(TType.I16, len(v))
            for x in v:
                p.writeI16(x)
            p.writeListEnd()
        elif t == TType.MAP:
            p.writeMapBegin(TType.STRING, TType.I64, len(v))
            for k, x in v.items():
                p.writeBinary(k.encode())
                p.writeI64(x)
            p.writeMapEnd()
        p.writeFieldEnd()
    p.writeFieldStop()
    p.writeStructEnd()


def serve(proto, trans, port):
    server = TSocket.TServerSocket(host="127.0.0.1", port=port)
    server.listen()
    print("ready", flush=True)
    while True:
        client = server.accept()
        t = transport(trans, client)
        p = protocol(proto, t)
        try:
            while True:
                name, kind, seq = p.readMessageBegin()
                args = read_struct(p)
                p.readMessageEnd()
                if kind == TMessageType.ONEWAY:
                    continue
                if name == "add":
                    total = args[1] + args[2]
                    if total > 2**31 - 1:
                        result = [(1, TType.STRUCT, [(1, TType.I32, 1), (2, TType.STRING, "sum overflows i32")])]
                    else:
                        result = [(0, TType.I32, total)]
                elif name == "echo":
                    result = [(0, TType.STRING, args[1])]
                elif name == "ping":
                    result = []
                else:
                    x = TApplicationException(TApplicationException.UNKNOWN_METHOD, "Unknown function " + name)
                    p.writeMessageBegin(name, TMessageType.EXCEPTION, seq)
                    x.write(p)
                    p.writeMessageEnd()
                    t.flush()
                    continue
                p.writeMessageBegin(name, TMessageType.REPLY, seq)
                write_struct(p, result)
                p.writeMessageEnd()
                t.flush()
        except TTransport.TTransportException:
            t.close()


# The client's calls: method, message type, argument fields.
CALLS = [
    ("ping", TMessageType.CALL, []),
    ("add", TMessageType.CALL, [(1, TType.I32, 1), (2, TType.I32, 2)]),
    ("add", TMessageType.CALL, [(1, TType.I32, 2**31 - 1), (2, TType.I32, 1)]),
    ("echo", TMessageType.CALL, [(1, TType.STRING, "hello"), (2, TType.LIST, [1, -2, 3]), (3, TType.MAP, {"a": 1})]),
    ("note", TMessageType.ONEWAY, [(1, TType.STRING, "fire and forget")]),
    ("echo", TMessageType.CALL, [(1, TType.STRING, "x" * 300), (2, TType.LIST, []), (3, TType.MAP, {})]),
    ("echo", TMessageType.CALL, [(1, TType.STRING, "y" * 100000)]),
    ("nosuch", TMessageType.CALL, []),
    ("ping", TMessageType.CALL, []),
]


def run_client(proto, trans, port):
    sock = TSocket.TSocket("127.0.0.1", port)
    t = transport(trans, sock)
    p = protocol(proto, t)
    t.open()
    for seq, (name, kind, fields) in enumerate(CALLS, 1):
        p.writeMessageBegin(name, kind, seq)
        write_struct(p, fields)
        p.writeMessageEnd()
        t.flush()
        seen = {"method": name}
        if kind == TMessageType.ONEWAY:
            seen["oneway"] = True
        else:
            rname, rkind, rseq = p.readMessageBegin()
            assert (rname, rseq) == (name, seq), (rname, rseq, name, seq)
            if rkind == TMessageType.EXCEPTION:
                x = TApplicationException()
                x.read(p)
                seen["application_exception"] = [x.message, x.type]
            else:
                result = read_struct(p)
                if 0 in result:
                    seen["result"] = result[0]
                elif result:
                    seen["exception"] = {str(k): v for k, v in result.items()}
            p.readMessageEnd()
        print(json.dumps(seen), flush=True)
    t.close()


if __name__ == "__main__":
    role, proto, trans, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if role == "server":
        serve(proto, trans, port)
    else:
        run_client(proto, trans, port)
