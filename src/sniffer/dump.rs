//! `--dump PREFIX`: writes every frame seen to the pcap file `PREFIX-YYYYmmddHHMMSS.pcap`
//! (local time at start, as Packetbeat names it; nanosecond timestamps, snaplen 65535).

use super::Frame;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, TsResolution};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

pub struct Dumper {
    writer: PcapWriter<BufWriter<File>>,
}

impl Dumper {
    /// Creates the dump file for `prefix`; returns it and its path.
    pub fn create(
        prefix: &Path,
        link: crate::decoder::LinkType,
    ) -> anyhow::Result<(Dumper, PathBuf)> {
        let mut name = prefix.as_os_str().to_owned();
        name.push(format!(
            "-{}.pcap",
            chrono::Local::now().format("%Y%m%d%H%M%S")
        ));
        let path = PathBuf::from(name);
        let file = File::create(&path)
            .map_err(|e| anyhow::anyhow!("cannot create dump file '{}': {e}", path.display()))?;
        let header = PcapHeader {
            datalink: DataLink::from(link.to_pcap()),
            ts_resolution: TsResolution::NanoSecond,
            snaplen: 65535,
            ..Default::default()
        };
        let writer = PcapWriter::with_header(BufWriter::new(file), header)?;
        Ok((Dumper { writer }, path))
    }

    pub fn write(&mut self, frame: &Frame) -> anyhow::Result<()> {
        let ts = std::time::Duration::from_nanos(frame.ts.0.max(0) as u64);
        self.writer
            .write_packet(&PcapPacket::new(ts, frame.orig_len, frame.data))?;
        Ok(())
    }
}
