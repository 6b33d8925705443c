#ifndef WMQ_CPCAP_SHIM_H
#define WMQ_CPCAP_SHIM_H
#include <pcap/pcap.h>
#endif
