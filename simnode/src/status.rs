//! The `simnode status` table: one row per PF uplink and per VF.

use std::fmt::Write;

use crate::layout::Layout;

/// Renders the layout as an aligned text table
/// (PF, PCI address, VF, VF netdev, representor, port name, driver, NUMA).
pub fn table(layout: &Layout) -> String {
    let numa = layout
        .numa_node
        .map_or_else(|| "-".to_string(), |n| n.to_string());
    let mut rows: Vec<[String; 8]> = vec![[
        "PF".into(),
        "PCI ADDRESS".into(),
        "VF".into(),
        "VF NETDEV".into(),
        "REPRESENTOR".into(),
        "PORT NAME".into(),
        "DRIVER".into(),
        "NUMA".into(),
    ]];
    let dash = || "-".to_string();
    for pf in &layout.pfs {
        rows.push([
            pf.index.to_string(),
            pf.pci.to_string(),
            dash(),
            dash(),
            pf.uplink.name.clone(),
            format!("p{}", pf.port),
            "mlx5_core".into(),
            numa.clone(),
        ]);
        for vf in &pf.vfs {
            rows.push([
                pf.index.to_string(),
                vf.pci.to_string(),
                vf.vf_index.to_string(),
                vf.netdev_name().map_or_else(dash, str::to_string),
                vf.representor_name().map_or_else(dash, str::to_string),
                vf.port_name.clone().unwrap_or_else(dash),
                vf.driver.clone().unwrap_or_else(|| "(none)".into()),
                numa.clone(),
            ]);
        }
    }
    let mut widths = [0usize; 8];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(widths) {
            let _ = write!(line, "{cell:<w$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SimNodeSpec;

    #[test]
    fn lists_uplinks_and_vfs() {
        let layout = Layout::plan(&SimNodeSpec::new("st", 2, 2).with_numa_node(Some(1)));
        let t = table(&layout);
        assert_eq!(t.lines().count(), 1 + 2 + 4);
        assert!(t.lines().next().unwrap().starts_with("PF  PCI ADDRESS"));
        let rows: Vec<Vec<&str>> = t.lines().map(|l| l.split_whitespace().collect()).collect();
        assert_eq!(
            rows[2],
            [
                "0",
                "0000:84:00.2",
                "0",
                "stp0v0",
                "stp0r0",
                "pf0vf0",
                "mlx5_core",
                "1"
            ]
        );
        assert_eq!(
            rows[4],
            ["1", "0000:84:00.1", "-", "-", "stp1", "p1", "mlx5_core", "1"]
        );
    }
}
