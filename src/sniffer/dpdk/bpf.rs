//! BPF filters (`packetbeat.interfaces.bpf_filter`) for the DPDK path, compiled by libpcap on a
//! dead Ethernet handle and run per packet with `pcap_offline_filter`.

use super::sys;
use std::ffi::{CStr, CString};

pub struct BpfFilter {
    prog: sys::bpf_program,
}

// SAFETY: the compiled program is plain memory owned by this value; pcap_offline_filter only reads it.
unsafe impl Send for BpfFilter {}
// SAFETY: matching only reads the program, so the per-queue sources share one.
unsafe impl Sync for BpfFilter {}

impl BpfFilter {
    pub fn compile(expr: &str, snaplen: u32) -> Result<BpfFilter, String> {
        let c = CString::new(expr).map_err(|_| "bpf_filter contains a NUL byte".to_string())?;
        // SAFETY: plain libpcap calls; the dead handle is closed before returning.
        unsafe {
            let p = sys::pcap_open_dead(1 /* DLT_EN10MB */, snaplen.min(262144) as i32);
            if p.is_null() {
                return Err("pcap_open_dead failed".into());
            }
            let mut prog = sys::bpf_program {
                bf_len: 0,
                bf_insns: std::ptr::null_mut(),
            };
            let rc = sys::pcap_compile(p, &mut prog, c.as_ptr(), 1, 0xffff_ffff);
            let res = if rc != 0 {
                Err(format!(
                    "invalid bpf_filter '{expr}': {}",
                    CStr::from_ptr(sys::pcap_geterr(p)).to_string_lossy()
                ))
            } else {
                Ok(BpfFilter { prog })
            };
            sys::pcap_close(p);
            res
        }
    }

    /// True when the frame passes the filter.
    #[inline]
    pub fn matches(&self, data: &[u8], orig_len: u32) -> bool {
        let hdr = sys::pcap_pkthdr {
            ts: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
            caplen: data.len() as u32,
            len: orig_len,
        };
        // SAFETY: the program is valid; hdr.caplen bytes are readable at data.
        unsafe { sys::pcap_offline_filter(&self.prog, &hdr, data.as_ptr()) != 0 }
    }
}

impl Drop for BpfFilter {
    fn drop(&mut self) {
        // SAFETY: compiled by pcap_compile, freed once.
        unsafe { sys::pcap_freecode(&mut self.prog) }
    }
}
