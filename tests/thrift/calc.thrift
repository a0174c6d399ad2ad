# The service of tests/thrift_server.rs (its server and client, tests/thrift/peer.py, write
# the messages by hand with the python `thrift` package's protocols; this file gives the
# analyzer the names through `idl_files`).
include "shared.thrift"

exception Overflow {
  1: i32 code,
  2: string why
}

service Calc extends shared.Base {
  i32 add(1: i32 left, 2: i32 right) throws (1: Overflow overflow),
  string echo(1: string text, 2: list<i16> numbers, 3: map<string, i64> tags),
  void ping(),
  oneway void note(1: string text)
}
