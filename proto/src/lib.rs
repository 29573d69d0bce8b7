//! Kubelet gRPC APIs: the device plugin API `v1beta1` and the plugin watcher's
//! `pluginregistration` v1, generated at build time from `proto/`.
//!
//! Field names, numbers and package names match the kubelet's, so these types
//! talk to a real kubelet.

/// Device plugin API `v1beta1` (`Registration` served by the kubelet,
/// `DevicePlugin` served by each plugin).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1beta1 {
    tonic::include_proto!("v1beta1");

    /// The API version a plugin registers with.
    pub const VERSION: &str = "v1beta1";
    /// `Device.health` of a usable device.
    pub const HEALTHY: &str = "Healthy";
    /// `Device.health` of a device the kubelet must not hand out.
    pub const UNHEALTHY: &str = "Unhealthy";
    /// File name of the kubelet's registration socket in the device plugin directory.
    pub const KUBELET_SOCKET: &str = "kubelet.sock";
}

/// Plugin watcher registration API v1 (`Registration` served by the plugin on a
/// socket in the kubelet's `plugins_registry` directory).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pluginregistration {
    tonic::include_proto!("pluginregistration");

    /// `PluginInfo.type` of a device plugin.
    pub const DEVICE_PLUGIN_TYPE: &str = "DevicePlugin";
}
