package storage

import (
	"github.com/prometheus/client_golang/prometheus"
)

// spaceCollector exports the space of the volume holding the storage root,
// read (statfs) at each scrape.
type spaceCollector struct {
	root       string
	free, size *prometheus.Desc
}

// NewSpaceCollector exports dvcr_storage_free_bytes (available to DVCR, as
// df's Avail) and the volume's size as dvcr_storage_size_bytes (the name
// the contract and the alerting rules use) for the filesystem driver's root.
func NewSpaceCollector(root string) prometheus.Collector {
	return &spaceCollector{
		root: root,
		free: prometheus.NewDesc("dvcr_storage_free_bytes", "Bytes available on the volume holding the registry's storage.", nil, nil),
		size: prometheus.NewDesc("dvcr_storage_size_bytes", "Size in bytes of the volume holding the registry's storage.", nil, nil),
	}
}

func (c *spaceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.free
	ch <- c.size
}

func (c *spaceCollector) Collect(ch chan<- prometheus.Metric) {
	u, err := volumeUsageAt(c.root)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.free, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.free, prometheus.GaugeValue, float64(u.Available))
	ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(u.Total))
}
