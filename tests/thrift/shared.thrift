// A base service, included by calc.thrift: its methods are found by name like any other.
namespace py shared

struct Info {
  1: i32 key
  2: string value
}

service Base {
  Info info(1: i32 key)
}
