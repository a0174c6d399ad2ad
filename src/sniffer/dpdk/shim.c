/*
 * C shim over DPDK 22.11 for packetbeat-rs (compiled by build.rs with the cc crate).
 *
 * It exists for two reasons: DPDK's fast-path API is `static inline` in its headers
 * (rte_eth_rx_burst, rte_pktmbuf_mtod, rte_pktmbuf_free, mbuf field access, the RX timestamp
 * dynfield), so there is no symbol to link against from Rust; and port configuration goes
 * through large structs (rte_eth_conf, rte_eth_dev_info) whose layout we would rather let the C
 * compiler know than mirror by hand. Everything here has a flat, Rust-friendly signature.
 */
#include <stdio.h>
#include <string.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>
#include <rte_lcore.h>

static int ts_offset = -1;
static uint64_t ts_flag;

/* What the receive loop reads of each mbuf (laid out as `sys::MbufInfo`). */
struct pb_mbuf_info {
	const uint8_t *data;
	uint32_t data_len;
	uint32_t pkt_len;
	uint32_t nb_segs;
};

/* rte_eth_rx_burst, and each received mbuf's data pointer, first-segment length, packet length
 * and segment count: one call per burst instead of one per packet. */
uint16_t pb_rx_burst_info(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n,
			  struct pb_mbuf_info *info)
{
	uint16_t got = rte_eth_rx_burst(port, queue, pkts, n);
	for (uint16_t i = 0; i < got; i++) {
		const struct rte_mbuf *m = pkts[i];
		info[i].data = rte_pktmbuf_mtod(m, const uint8_t *);
		info[i].data_len = m->data_len;
		info[i].pkt_len = m->pkt_len;
		info[i].nb_segs = m->nb_segs;
	}
	return got;
}

/* Gives the calling thread an lcore id, and so a mempool cache of its own, when it has none
 * (EAL's main thread has one): 1 when this call registered it, 0 when it had one, -1 when EAL
 * has no lcore slot left (the thread then goes to the mempool's shared ring). */
int pb_thread_register(void)
{
	if (rte_lcore_id() != LCORE_ID_ANY)
		return 0;
	return rte_thread_register() == 0 ? 1 : -1;
}

/* Releases the lcore id pb_thread_register gave the calling thread. */
void pb_thread_unregister(void)
{
	rte_thread_unregister();
}

/* Copies a (possibly multi-segment) packet into out (capacity cap); returns bytes copied. */
uint32_t pb_mbuf_copy(const struct rte_mbuf *m, uint8_t *out, uint32_t cap)
{
	uint32_t n = 0;
	for (; m != NULL && n < cap; m = m->next) {
		uint32_t k = m->data_len;
		if (k > cap - n)
			k = cap - n;
		memcpy(out + n, rte_pktmbuf_mtod(m, const uint8_t *), k);
		n += k;
	}
	return n;
}

/* RX timestamp of the mbuf when the driver set one (returns 1), else 0. */
int pb_mbuf_rx_timestamp(const struct rte_mbuf *m, uint64_t *ts)
{
	if (ts_offset < 0 || !(m->ol_flags & ts_flag))
		return 0;
	*ts = *RTE_MBUF_DYNFIELD(m, ts_offset, const rte_mbuf_timestamp_t *);
	return 1;
}

void pb_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

void pb_pktmbuf_free_bulk(struct rte_mbuf **m, unsigned int n)
{
	rte_pktmbuf_free_bulk(m, n);
}

static void set_err(char *err, size_t len, const char *fmt, int port, int rc)
{
	snprintf(err, len, fmt, port, rc < 0 ? rte_strerror(-rc) : "");
}

/* Driver name of a port ("net_pcap", "net_null", ...), or NULL. */
const char *pb_port_driver(uint16_t port)
{
	struct rte_eth_dev_info info;
	if (rte_eth_dev_info_get(port, &info) != 0)
		return NULL;
	return info.driver_name;
}

/*
 * Configures and starts `port` with `*nb_queues` RX queues (reduced to what the port offers; no
 * TX queue is used but one is set up, as some PMDs require it), `nb_rxd` descriptors per queue,
 * a mempool of `n_mbufs` mbufs. RSS with the symmetric key 0x6D5A... when the port has RSS and
 * more than one queue, and its redirection table spread evenly over the queues when the port
 * has one it lets us write (*reta_entries = its size, else 0); RX timestamp offload when offered
 * (*ts_enabled = 1).
 * Returns 0, or -1 with a message in err.
 */
int pb_port_start(uint16_t port, uint16_t *nb_queues, uint16_t nb_rxd, unsigned int n_mbufs,
		  int promisc, int *ts_enabled, int *rss_enabled, int *reta_entries, char *err,
		  size_t errlen)
{
	struct rte_eth_dev_info info;
	struct rte_eth_conf conf;
	static uint8_t key[64];
	int rc;
	uint16_t q;

	if (!rte_eth_dev_is_valid_port(port)) {
		snprintf(err, errlen, "DPDK port %u does not exist (%u port(s) available)", port,
			 rte_eth_dev_count_avail());
		return -1;
	}
	rc = rte_eth_dev_info_get(port, &info);
	if (rc != 0) {
		set_err(err, errlen, "cannot get info of DPDK port %d: %s", port, rc);
		return -1;
	}
	if (*nb_queues > info.max_rx_queues)
		*nb_queues = info.max_rx_queues;
	if (*nb_queues == 0)
		*nb_queues = 1;
	memset(&conf, 0, sizeof(conf));
	*rss_enabled = 0;
	if (*nb_queues > 1 && info.flow_type_rss_offloads != 0) {
		uint8_t klen = info.hash_key_size ? info.hash_key_size : 40;
		if (klen > sizeof(key))
			klen = sizeof(key);
		for (int i = 0; i < klen; i += 2) {
			key[i] = 0x6D;
			key[i + 1] = 0x5A;
		}
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_key = key;
		conf.rx_adv_conf.rss_conf.rss_key_len = klen;
		conf.rx_adv_conf.rss_conf.rss_hf =
			(RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
		*rss_enabled = 1;
	}
	*ts_enabled = 0;
	if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_TIMESTAMP) {
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TIMESTAMP;
		*ts_enabled = 1;
	}
	if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER)
		conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
	rc = rte_eth_dev_configure(port, *nb_queues, 1, &conf);
	if (rc != 0) {
		set_err(err, errlen, "cannot configure DPDK port %d: %s", port, rc);
		return -1;
	}
	if (nb_rxd == 0)
		nb_rxd = 1024;
	uint16_t nb_txd = 64;
	rte_eth_dev_adjust_nb_rx_tx_desc(port, &nb_rxd, &nb_txd);
	char name[RTE_MEMPOOL_NAMESIZE];
	snprintf(name, sizeof(name), "pb_mbufs_%u", port);
	struct rte_mempool *pool = rte_pktmbuf_pool_create(
		name, n_mbufs, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, rte_eth_dev_socket_id(port));
	if (pool == NULL) {
		snprintf(err, errlen, "cannot create a mempool of %u mbufs for DPDK port %u: %s",
			 n_mbufs, port, rte_strerror(rte_errno));
		return -1;
	}
	for (q = 0; q < *nb_queues; q++) {
		struct rte_eth_rxconf rxconf = info.default_rxconf;
		rxconf.offloads = conf.rxmode.offloads;
		rc = rte_eth_rx_queue_setup(port, q, nb_rxd, rte_eth_dev_socket_id(port), &rxconf,
					    pool);
		if (rc != 0) {
			set_err(err, errlen, "cannot set up an RX queue of DPDK port %d: %s", port, rc);
			return -1;
		}
	}
	rc = rte_eth_tx_queue_setup(port, 0, nb_txd, rte_eth_dev_socket_id(port), NULL);
	if (rc != 0) {
		set_err(err, errlen, "cannot set up the TX queue of DPDK port %d: %s", port, rc);
		return -1;
	}
	/* Some PMDs (pcap) stamp packets without advertising the offload: look the field up in
	 * any case (registering returns the existing field), and read it only where the mbuf's
	 * flag says it is set. */
	if (rte_mbuf_dyn_rx_timestamp_register(&ts_offset, &ts_flag) != 0) {
		ts_offset = -1;
		*ts_enabled = 0;
	}
	rc = rte_eth_dev_start(port);
	if (rc != 0) {
		set_err(err, errlen, "cannot start DPDK port %d: %s", port, rc);
		return -1;
	}
	*reta_entries = 0;
	if (*rss_enabled && info.reta_size > 0 && info.reta_size <= RTE_ETH_RSS_RETA_SIZE_512) {
		struct rte_eth_rss_reta_entry64 reta[RTE_ETH_RSS_RETA_SIZE_512 / RTE_ETH_RETA_GROUP_SIZE];
		memset(reta, 0, sizeof(reta));
		for (unsigned int i = 0; i < info.reta_size; i++) {
			reta[i / RTE_ETH_RETA_GROUP_SIZE].mask |= 1ULL << (i % RTE_ETH_RETA_GROUP_SIZE);
			reta[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE] =
				i % *nb_queues;
		}
		if (rte_eth_dev_rss_reta_update(port, reta, info.reta_size) == 0)
			*reta_entries = info.reta_size;
	}
	if (promisc)
		rte_eth_promiscuous_enable(port);
	rte_eth_stats_reset(port);
	return 0;
}

/* out: ipackets, imissed, ierrors, rx_nombuf, then q_ipackets[0..nq] (nq <= 16). */
int pb_port_stats(uint16_t port, uint64_t *out, unsigned int nq)
{
	struct rte_eth_stats st;
	if (rte_eth_stats_get(port, &st) != 0)
		return -1;
	out[0] = st.ipackets;
	out[1] = st.imissed;
	out[2] = st.ierrors;
	out[3] = st.rx_nombuf;
	for (unsigned int i = 0; i < nq && i < RTE_ETHDEV_QUEUE_STAT_CNTRS; i++)
		out[4 + i] = st.q_ipackets[i];
	return 0;
}

void pb_port_stop(uint16_t port)
{
	rte_eth_dev_stop(port);
	rte_eth_dev_close(port);
}

int pb_errno(void)
{
	return rte_errno;
}
