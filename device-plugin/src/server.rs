//! The `DevicePlugin` gRPC service of one resource.

use std::collections::HashSet;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures::{Stream, StreamExt};
use kubelet_proto::v1beta1::device_plugin_server::DevicePlugin;
use kubelet_proto::v1beta1::{
    AllocateRequest, AllocateResponse, ContainerPreferredAllocationResponse, DevicePluginOptions, Empty,
    ListAndWatchResponse, PreStartContainerRequest, PreStartContainerResponse, PreferredAllocationRequest,
    PreferredAllocationResponse,
};
use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;
use tonic::{Request, Response, Status};

use crate::allocate::{self, AllocateError};
use crate::device_info::DeviceInfoDir;
use crate::pool::{Pool, PoolDevice};
use crate::preferred::{preferred, Placement};
use sriov_logging::error_chain;

/// Options every registration announces.
pub fn plugin_options() -> DevicePluginOptions {
    DevicePluginOptions {
        pre_start_required: false,
        get_preferred_allocation_available: true,
    }
}

/// Serves one resource's pool.
#[derive(Clone)]
pub struct DevicePluginService {
    pool: Arc<Pool>,
    device_info_dir: PathBuf,
    stop: watch::Receiver<bool>,
    cdi: bool,
}

impl DevicePluginService {
    /// A service for `pool` writing device-info files to `device_info_dir`;
    /// streams end when `stop` turns true. With `cdi`, `Allocate` answers
    /// with CDI device names instead of device nodes.
    pub fn new(
        pool: Arc<Pool>,
        device_info_dir: PathBuf,
        stop: watch::Receiver<bool>,
        cdi: bool,
    ) -> DevicePluginService {
        DevicePluginService {
            pool,
            device_info_dir,
            stop,
            cdi,
        }
    }
}

type ListStream = Pin<Box<dyn Stream<Item = Result<ListAndWatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl DevicePlugin for DevicePluginService {
    async fn get_device_plugin_options(
        &self,
        _: Request<Empty>,
    ) -> Result<Response<DevicePluginOptions>, Status> {
        Ok(Response::new(plugin_options()))
    }

    type ListAndWatchStream = ListStream;

    async fn list_and_watch(&self, _: Request<Empty>) -> Result<Response<ListStream>, Status> {
        let mut stop = self.stop.clone();
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        // Counted while the stream lives (ended by the kubelet or by us).
        let open = self.pool.metrics().stream_opened();
        let stream = WatchStream::new(self.pool.subscribe())
            .map(move |list| {
                let _open = &open;
                Ok(list.as_ref().clone())
            })
            .take_until(stopped);
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_preferred_allocation(
        &self,
        request: Request<PreferredAllocationRequest>,
    ) -> Result<Response<PreferredAllocationResponse>, Status> {
        let started = Instant::now();
        let placement = |id: &str| {
            self.pool.with_device(id, |d| Placement {
                pf: d.record.pf_address.unwrap_or(d.record.address),
                numa: d.record.numa_node,
            })
        };
        let container_responses = request
            .into_inner()
            .container_requests
            .iter()
            .map(|c| ContainerPreferredAllocationResponse {
                device_i_ds: preferred(
                    &c.available_device_i_ds,
                    &c.must_include_device_i_ds,
                    usize::try_from(c.allocation_size).unwrap_or(0),
                    placement,
                ),
            })
            .collect();
        self.pool.metrics().preferred_took(started.elapsed());
        Ok(Response::new(PreferredAllocationResponse { container_responses }))
    }

    async fn allocate(
        &self,
        request: Request<AllocateRequest>,
    ) -> Result<Response<AllocateResponse>, Status> {
        let started = Instant::now();
        let answer = self.allocate_devices(request.into_inner());
        let metrics = self.pool.metrics();
        metrics.allocate_took(started.elapsed());
        let (response, handed_out) = answer?;
        metrics.allocated(handed_out);
        Ok(Response::new(response))
    }

    async fn pre_start_container(
        &self,
        _: Request<PreStartContainerRequest>,
    ) -> Result<Response<PreStartContainerResponse>, Status> {
        Ok(Response::new(PreStartContainerResponse {}))
    }
}

impl DevicePluginService {
    /// Answers `Allocate`; also returns how many distinct devices it
    /// handed out.
    fn allocate_devices(&self, request: AllocateRequest) -> Result<(AllocateResponse, usize), Status> {
        let config = self.pool.config();
        let resource = config.full_name();
        let containers: Vec<Vec<String>> = request
            .container_requests
            .into_iter()
            .map(|c| c.devices_ids)
            .collect();
        let resolved = allocate::resolve(&self.pool, &resource, &containers).map_err(|e| {
            tracing::warn!(error = %e, "refusing allocation");
            Status::invalid_argument(e.to_string())
        })?;
        let dir = DeviceInfoDir::new(&self.device_info_dir, &config.prefix, &config.name);
        let mut seen = HashSet::new();
        let unique: Vec<&PoolDevice> = resolved
            .iter()
            .flatten()
            .filter(|d| seen.insert(d.record.address))
            .collect();
        allocate::write_device_infos(&dir, &resource, &unique).map_err(|e: AllocateError| {
            // The cause (path, errno) is what the operator acts on.
            let message = error_chain(&e);
            tracing::error!(error = %message, "allocation failed");
            Status::internal(message)
        })?;
        let container_responses = resolved
            .iter()
            .map(|devices| allocate::container_response(&config, devices, self.cdi))
            .collect();
        tracing::info!(resource = %resource, devices = ?containers, "allocated");
        Ok((AllocateResponse { container_responses }, unique.len()))
    }
}
