//! Pins the wire encoding of kubelet messages byte for byte: the bytes below
//! were computed by hand from the field numbers and types of the published
//! kubelet API, so a renumbered or retyped field fails here.

use kubelet_proto::pluginregistration::{PluginInfo, RegistrationStatus};
use kubelet_proto::v1beta1::{
    AllocateResponse, ContainerAllocateResponse, ContainerPreferredAllocationRequest,
    ContainerPreferredAllocationResponse, Device, DevicePluginOptions, DeviceSpec, NumaNode,
    PreferredAllocationRequest, PreferredAllocationResponse, RegisterRequest, TopologyInfo,
};
use prost::Message;

/// Length-delimited field: key byte, one-byte length, payload.
fn ld(key: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 128);
    let mut out = vec![key, payload.len() as u8];
    out.extend_from_slice(payload);
    out
}

fn round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(msg: &M, expected: &[u8]) {
    assert_eq!(msg.encode_to_vec(), expected, "encoding of {msg:?}");
    assert_eq!(&M::decode(expected).unwrap(), msg);
}

#[test]
fn register_request_encodes_like_the_kubelet_expects() {
    let msg = RegisterRequest {
        version: "v1beta1".into(),
        endpoint: "a.sock".into(),
        resource_name: "x/y".into(),
        options: Some(DevicePluginOptions {
            pre_start_required: false,
            get_preferred_allocation_available: true,
        }),
    };
    let expected = [
        ld(0x0a, b"v1beta1"),
        ld(0x12, b"a.sock"),
        ld(0x1a, b"x/y"),
        // options = 4, holding field 2 (varint) = 1.
        ld(0x22, &[0x10, 0x01]),
    ]
    .concat();
    round_trip(&msg, &expected);
}

#[test]
fn device_with_numa_topology_encodes_id_health_and_node() {
    let msg = Device {
        id: "0000:84:00.2".into(),
        health: "Healthy".into(),
        topology: Some(TopologyInfo {
            nodes: vec![NumaNode { id: 1 }],
        }),
    };
    let node = [0x08, 0x01];
    let topology = ld(0x0a, &node);
    let expected = [
        ld(0x0a, b"0000:84:00.2"),
        ld(0x12, b"Healthy"),
        ld(0x1a, &topology),
    ]
    .concat();
    assert_eq!(
        expected,
        [
            &[0x0a, 12][..],
            b"0000:84:00.2",
            &[0x12, 7],
            b"Healthy",
            &[0x1a, 4, 0x0a, 2, 0x08, 1]
        ]
        .concat()
    );
    round_trip(&msg, &expected);
}

#[test]
fn allocate_response_encodes_envs_map_and_device_specs() {
    let msg = AllocateResponse {
        container_responses: vec![ContainerAllocateResponse {
            envs: [("K".to_string(), "V".to_string())].into_iter().collect(),
            mounts: vec![],
            devices: vec![DeviceSpec {
                container_path: "/dev/vfio/vfio".into(),
                host_path: "/dev/vfio/vfio".into(),
                permissions: "rw".into(),
            }],
            annotations: Default::default(),
            cdi_devices: vec![],
        }],
    };
    // A map entry is a message with key = 1 and value = 2.
    let entry = [0x0a, 1, b'K', 0x12, 1, b'V'];
    let spec = [
        ld(0x0a, b"/dev/vfio/vfio"),
        ld(0x12, b"/dev/vfio/vfio"),
        ld(0x1a, b"rw"),
    ]
    .concat();
    let container = [ld(0x0a, &entry), ld(0x1a, &spec)].concat();
    let expected = ld(0x0a, &container);
    assert_eq!(expected[..2], [0x0a, 46]);
    round_trip(&msg, &expected);
}

#[test]
fn preferred_allocation_messages_use_kubelet_field_numbers() {
    let req = PreferredAllocationRequest {
        container_requests: vec![ContainerPreferredAllocationRequest {
            available_device_i_ds: vec!["a".into(), "b".into()],
            must_include_device_i_ds: vec!["a".into()],
            allocation_size: 2,
        }],
    };
    let inner = [ld(0x0a, b"a"), ld(0x0a, b"b"), ld(0x12, b"a"), vec![0x18, 2]].concat();
    round_trip(&req, &ld(0x0a, &inner));

    let resp = PreferredAllocationResponse {
        container_responses: vec![ContainerPreferredAllocationResponse {
            device_i_ds: vec!["b".into()],
        }],
    };
    round_trip(&resp, &ld(0x0a, &ld(0x0a, b"b")));
}

#[test]
fn plugin_registration_messages_use_kubelet_field_numbers() {
    let info = PluginInfo {
        r#type: "DevicePlugin".into(),
        name: "x/y".into(),
        endpoint: "/p.sock".into(),
        supported_versions: vec!["v1beta1".into()],
    };
    let expected = [
        ld(0x0a, b"DevicePlugin"),
        ld(0x12, b"x/y"),
        ld(0x1a, b"/p.sock"),
        ld(0x22, b"v1beta1"),
    ]
    .concat();
    round_trip(&info, &expected);

    let status = RegistrationStatus {
        plugin_registered: true,
        error: "no".into(),
    };
    round_trip(&status, &[&[0x08, 1][..], &ld(0x12, b"no")].concat());
}
