//! Hand-written FFI declarations for the part of DPDK 22.11 (and libpcap) this sniffer uses.
//!
//! Why hand-written: the `dpdk-sys`-style crates on crates.io target DPDK releases that are
//! years older than the 22.11 Debian ships, and bindgen would add libclang to the build for a
//! dozen functions. DPDK's fast path (`rte_eth_rx_burst`, `rte_pktmbuf_mtod`, `rte_pktmbuf_free`,
//! mbuf fields, the RX timestamp dynfield) is `static inline` in its headers, so it cannot be
//! declared here at all: `shim.c` wraps it, together with port set-up (large structs whose layout
//! the C compiler knows), in functions with flat signatures (`pb_*`). Only exported symbols with
//! stable, simple signatures are declared directly.

#![allow(non_camel_case_types)]

use libc::{c_char, c_int, c_uint, c_void, size_t};

/// `struct rte_mbuf`, opaque here: only the shim looks inside.
#[repr(C)]
pub struct rte_mbuf {
    _private: [u8; 0],
}

/// What `pb_rx_burst_info` reads of each received mbuf (`struct pb_mbuf_info` in shim.c).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct MbufInfo {
    pub data: *const u8,
    pub data_len: u32,
    pub pkt_len: u32,
    pub nb_segs: u32,
}

impl MbufInfo {
    pub const EMPTY: MbufInfo = MbufInfo {
        data: std::ptr::null(),
        data_len: 0,
        pkt_len: 0,
        nb_segs: 0,
    };
}

extern "C" {
    // librte_eal
    pub fn rte_eal_init(argc: c_int, argv: *mut *mut c_char) -> c_int;
    pub fn rte_eal_cleanup() -> c_int;
    pub fn rte_strerror(errnum: c_int) -> *const c_char;
    // librte_ethdev
    pub fn rte_eth_dev_count_avail() -> u16;
    pub fn rte_eth_dev_is_valid_port(port_id: u16) -> c_int;
    pub fn rte_eth_dev_get_name_by_port(port_id: u16, name: *mut c_char) -> c_int;

    // shim.c
    pub fn pb_rx_burst_info(
        port: u16,
        queue: u16,
        pkts: *mut *mut rte_mbuf,
        n: u16,
        info: *mut MbufInfo,
    ) -> u16;
    pub fn pb_thread_register() -> c_int;
    pub fn pb_thread_unregister();
    pub fn pb_mbuf_copy(m: *const rte_mbuf, out: *mut u8, cap: u32) -> u32;
    pub fn pb_mbuf_rx_timestamp(m: *const rte_mbuf, ts: *mut u64) -> c_int;
    pub fn pb_pktmbuf_free(m: *mut rte_mbuf);
    pub fn pb_pktmbuf_free_bulk(m: *mut *mut rte_mbuf, n: c_uint);
    pub fn pb_port_driver(port: u16) -> *const c_char;
    pub fn pb_port_start(
        port: u16,
        nb_queues: *mut u16,
        nb_rxd: u16,
        n_mbufs: c_uint,
        promisc: c_int,
        ts_enabled: *mut c_int,
        rss_enabled: *mut c_int,
        reta_entries: *mut c_int,
        err: *mut c_char,
        errlen: size_t,
    ) -> c_int;
    pub fn pb_port_stats(port: u16, out: *mut u64, nq: c_uint) -> c_int;
    pub fn pb_port_stop(port: u16);
    pub fn pb_errno() -> c_int;
}

/// libpcap, for BPF filters (`pcap_compile` on a dead handle, `pcap_offline_filter`).
#[repr(C)]
pub struct bpf_program {
    pub bf_len: c_uint,
    pub bf_insns: *mut c_void,
}

#[repr(C)]
pub struct pcap_pkthdr {
    pub ts: libc::timeval,
    pub caplen: u32,
    pub len: u32,
}

pub type pcap_t = c_void;

extern "C" {
    pub fn pcap_open_dead(linktype: c_int, snaplen: c_int) -> *mut pcap_t;
    pub fn pcap_compile(
        p: *mut pcap_t,
        fp: *mut bpf_program,
        s: *const c_char,
        optimize: c_int,
        netmask: u32,
    ) -> c_int;
    pub fn pcap_offline_filter(
        fp: *const bpf_program,
        h: *const pcap_pkthdr,
        pkt: *const u8,
    ) -> c_int;
    pub fn pcap_freecode(fp: *mut bpf_program);
    pub fn pcap_geterr(p: *mut pcap_t) -> *mut c_char;
    pub fn pcap_close(p: *mut pcap_t);
}

/// `rte_strerror` as a String.
pub fn strerror(errnum: c_int) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(rte_strerror(errnum)) }
        .to_string_lossy()
        .into_owned()
}
