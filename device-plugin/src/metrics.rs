//! Prometheus metrics of the plugin (`--metrics-address`), one series per
//! resource (`<prefix>/<name>`), in the OpenMetrics text format.
//!
//! The daemon, the gRPC services and the registration tasks each hold a
//! [`ResourceMetrics`]: cheap handles into one shared [`Metrics`] registry,
//! so updating a value takes no lock and no label lookup.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// Prefix of every metric name.
pub const PREFIX: &str = "sriov_device_plugin";

/// `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabel {
    resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HealthLabels {
    resource: String,
    health: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    resource: String,
    to: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

const HEALTHY: &str = "healthy";
const UNHEALTHY: &str = "unhealthy";

/// Latency buckets: 50 µs doubling to ~0.8 s (an `Allocate` takes ~0.2 ms,
/// one writing to a slow disk a few ms).
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(50e-6, 2.0, 15))
}

type HistogramFamily = Family<ResourceLabel, Histogram, fn() -> Histogram>;

/// Every metric family of the plugin and the registry that exposes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    devices: Family<HealthLabels, Gauge>,
    allocated: Family<ResourceLabel, Counter>,
    allocate_duration: HistogramFamily,
    preferred_duration: HistogramFamily,
    registrations: Family<ResourceLabel, Counter>,
    registration_failures: Family<ResourceLabel, Counter>,
    registered: Family<ResourceLabel, Gauge>,
    transitions: Family<TransitionLabels, Counter>,
    streams: Family<ResourceLabel, Gauge>,
}

impl Metrics {
    /// A registry holding every family, with `build_info` set.
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix(PREFIX);
        let metrics = Metrics {
            devices: Family::default(),
            allocated: Family::default(),
            allocate_duration: Family::new_with_constructor(latency_histogram),
            preferred_duration: Family::new_with_constructor(latency_histogram),
            registrations: Family::default(),
            registration_failures: Family::default(),
            registered: Family::default(),
            transitions: Family::default(),
            streams: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "devices",
            "Devices of the resource by health, as last sent to the kubelet",
            metrics.devices.clone(),
        );
        registry.register(
            "allocated_devices",
            "Devices handed out by Allocate since the plugin started",
            metrics.allocated.clone(),
        );
        registry.register_with_unit(
            "allocate_duration",
            "Time to answer Allocate",
            Unit::Seconds,
            metrics.allocate_duration.clone(),
        );
        registry.register_with_unit(
            "get_preferred_allocation_duration",
            "Time to answer GetPreferredAllocation",
            Unit::Seconds,
            metrics.preferred_duration.clone(),
        );
        registry.register(
            "kubelet_registrations",
            "Successful registrations of the resource with the kubelet",
            metrics.registrations.clone(),
        );
        registry.register(
            "kubelet_registration_failures",
            "Failed attempts to register the resource with the kubelet",
            metrics.registration_failures.clone(),
        );
        registry.register(
            "registered",
            "1 while the resource is registered with the kubelet, else 0",
            metrics.registered.clone(),
        );
        registry.register(
            "health_transitions",
            "Devices whose health changed, by the health they changed to",
            metrics.transitions.clone(),
        );
        registry.register(
            "list_and_watch_streams",
            "Open ListAndWatch streams",
            metrics.streams.clone(),
        );
        let build: Family<VersionLabel, Gauge> = Family::default();
        build
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        registry.register("build_info", "The plugin's version (value 1)", build);
        Arc::new(Metrics { registry, ..metrics })
    }

    /// Handles of `resource`'s series, created at zero when new.
    pub fn resource(&self, resource: &str) -> ResourceMetrics {
        let label = ResourceLabel {
            resource: resource.to_string(),
        };
        let health = |health| HealthLabels {
            resource: resource.to_string(),
            health,
        };
        let to = |to| TransitionLabels {
            resource: resource.to_string(),
            to,
        };
        ResourceMetrics {
            healthy: self.devices.get_or_create_owned(&health(HEALTHY)),
            unhealthy: self.devices.get_or_create_owned(&health(UNHEALTHY)),
            allocated: self.allocated.get_or_create_owned(&label),
            allocate_duration: self.allocate_duration.get_or_create_owned(&label),
            preferred_duration: self.preferred_duration.get_or_create_owned(&label),
            registrations: self.registrations.get_or_create_owned(&label),
            registration_failures: self.registration_failures.get_or_create_owned(&label),
            registered: self.registered.get_or_create_owned(&label),
            to_healthy: self.transitions.get_or_create_owned(&to(HEALTHY)),
            to_unhealthy: self.transitions.get_or_create_owned(&to(UNHEALTHY)),
            streams: self.streams.get_or_create_owned(&label),
        }
    }

    /// Drops `resource`'s series (it left the config): a scrape then no
    /// longer shows a resource the plugin does not serve.
    pub fn forget(&self, resource: &str) {
        let label = ResourceLabel {
            resource: resource.to_string(),
        };
        for health in [HEALTHY, UNHEALTHY] {
            self.devices.remove(&HealthLabels {
                resource: resource.to_string(),
                health,
            });
            self.transitions.remove(&TransitionLabels {
                resource: resource.to_string(),
                to: health,
            });
        }
        self.allocated.remove(&label);
        self.allocate_duration.remove(&label);
        self.preferred_duration.remove(&label);
        self.registrations.remove(&label);
        self.registration_failures.remove(&label);
        self.registered.remove(&label);
        self.streams.remove(&label);
    }

    /// The OpenMetrics text exposition of every series.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// One resource's series. Clones share the values.
#[derive(Clone, Debug)]
pub struct ResourceMetrics {
    healthy: Gauge,
    unhealthy: Gauge,
    allocated: Counter,
    allocate_duration: Histogram,
    preferred_duration: Histogram,
    registrations: Counter,
    registration_failures: Counter,
    registered: Gauge,
    to_healthy: Counter,
    to_unhealthy: Counter,
    streams: Gauge,
}

impl ResourceMetrics {
    /// The pool now holds `healthy` and `unhealthy` devices.
    pub fn set_devices(&self, healthy: usize, unhealthy: usize) {
        self.healthy.set(i64::try_from(healthy).unwrap_or(i64::MAX));
        self.unhealthy.set(i64::try_from(unhealthy).unwrap_or(i64::MAX));
    }

    /// `healed` devices turned healthy and `failed` unhealthy.
    pub fn health_changed(&self, healed: usize, failed: usize) {
        self.to_healthy.inc_by(healed as u64);
        self.to_unhealthy.inc_by(failed as u64);
    }

    /// An `Allocate` handed out `devices` devices.
    pub fn allocated(&self, devices: usize) {
        self.allocated.inc_by(devices as u64);
    }

    /// An `Allocate` took `elapsed`.
    pub fn allocate_took(&self, elapsed: Duration) {
        self.allocate_duration.observe(elapsed.as_secs_f64());
    }

    /// A `GetPreferredAllocation` took `elapsed`.
    pub fn preferred_took(&self, elapsed: Duration) {
        self.preferred_duration.observe(elapsed.as_secs_f64());
    }

    /// The kubelet accepted the resource.
    pub fn registered(&self) {
        self.registrations.inc();
        self.registered.set(1);
    }

    /// An attempt to register failed.
    pub fn registration_failed(&self) {
        self.registration_failures.inc();
    }

    /// The resource is no longer registered (its socket is being recreated,
    /// or the kubelet refused it).
    pub fn unregistered(&self) {
        self.registered.set(0);
    }

    /// True while the resource is registered.
    pub fn is_registered(&self) -> bool {
        self.registered.get() == 1
    }

    /// A `ListAndWatch` stream opened; it counts until the guard drops.
    pub fn stream_opened(&self) -> StreamGuard {
        self.streams.inc();
        StreamGuard(self.streams.clone())
    }
}

/// Counts one open `ListAndWatch` stream while it lives.
#[derive(Debug)]
pub struct StreamGuard(Gauge);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sample lines (not comments) of `text` starting with `name`.
    fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        text.lines().filter(|l| l.starts_with(name)).collect()
    }

    #[test]
    fn exposition_uses_the_documented_names_and_labels() {
        let metrics = Metrics::new();
        let cx5 = metrics.resource("mellanox.com/cx5");
        cx5.set_devices(3, 1);
        cx5.health_changed(0, 1);
        cx5.allocated(2);
        cx5.allocate_took(Duration::from_micros(180));
        cx5.preferred_took(Duration::from_micros(90));
        cx5.registration_failed();
        cx5.registered();
        let _stream = cx5.stream_opened();
        let text = metrics.encode();
        let r = r#"resource="mellanox.com/cx5""#;
        for line in [
            format!(r#"sriov_device_plugin_devices{{{r},health="healthy"}} 3"#),
            format!(r#"sriov_device_plugin_devices{{{r},health="unhealthy"}} 1"#),
            format!("sriov_device_plugin_allocated_devices_total{{{r}}} 2"),
            format!("sriov_device_plugin_allocate_duration_seconds_count{{{r}}} 1"),
            format!("sriov_device_plugin_get_preferred_allocation_duration_seconds_count{{{r}}} 1"),
            format!("sriov_device_plugin_kubelet_registrations_total{{{r}}} 1"),
            format!("sriov_device_plugin_kubelet_registration_failures_total{{{r}}} 1"),
            format!("sriov_device_plugin_registered{{{r}}} 1"),
            format!(r#"sriov_device_plugin_health_transitions_total{{{r},to="unhealthy"}} 1"#),
            format!(r#"sriov_device_plugin_health_transitions_total{{{r},to="healthy"}} 0"#),
            format!("sriov_device_plugin_list_and_watch_streams{{{r}}} 1"),
            format!(
                r#"sriov_device_plugin_build_info{{version="{}"}} 1"#,
                env!("CARGO_PKG_VERSION")
            ),
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
        }
        // Base units, histogram buckets in seconds.
        assert!(text.contains("# UNIT sriov_device_plugin_allocate_duration_seconds seconds"));
        assert!(text.contains(&format!(
            "sriov_device_plugin_allocate_duration_seconds_bucket{{le=\"0.0002\",{r}}} 1"
        )));
        assert!(text.ends_with("# EOF\n"));
        drop(_stream);
        assert!(metrics
            .encode()
            .contains(&format!("sriov_device_plugin_list_and_watch_streams{{{r}}} 0")));
    }

    #[test]
    fn a_forgotten_resource_leaves_the_exposition() {
        let metrics = Metrics::new();
        metrics.resource("intel.com/a").set_devices(1, 0);
        metrics.resource("intel.com/b").set_devices(2, 0);
        metrics.forget("intel.com/a");
        let text = metrics.encode();
        assert!(samples(&text, "sriov_device_plugin_")
            .iter()
            .all(|l| !l.contains("intel.com/a")));
        assert!(text.contains(r#"sriov_device_plugin_devices{resource="intel.com/b",health="healthy"} 2"#));
    }
}
