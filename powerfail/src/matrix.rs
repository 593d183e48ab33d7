//! The matrix: shapes × write sizes × flows × fault kinds, run on all cores.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bootloader::sim::SplitMix;

use crate::flow::{self, Flow};
use crate::point::{self, FaultKind, Plan, Point, Recovery};
use crate::shape::{self, Shape};

/// Write sizes the bootloader accepts: powers of two up to 32 bytes.
pub const WRITE_SIZES: [usize; 6] = [1, 2, 4, 8, 16, 32];

/// How much of the matrix to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Flash shapes.
    pub shapes: Vec<Shape>,
    /// Flash write sizes.
    pub write_sizes: Vec<usize>,
    /// Flows.
    pub flows: Vec<Flow>,
    /// Torn-write variants per write operation.
    pub torn_seeds: u64,
    /// Partial and random damage variants per erase operation.
    pub erase_seeds: u64,
    /// Random samples per cell, each with further faults during recovery.
    pub random_samples: u32,
    /// Most faults during one sample's recovery.
    pub recovery_faults: u32,
    /// Seed of the random-sample mode.
    pub seed: u64,
    /// Worker threads.
    pub jobs: usize,
    /// Only the cells whose name contains this text.
    pub only: Option<String>,
}

impl Options {
    /// The CI matrix: every shape, write size, flow and fault kind at every operation (one
    /// variant of each), plus 40 random samples per cell.
    pub fn ci() -> Self {
        Self {
            shapes: shape::ALL.to_vec(),
            write_sizes: WRITE_SIZES.to_vec(),
            flows: flow::supported(),
            torn_seeds: 1,
            erase_seeds: 1,
            random_samples: 40,
            recovery_faults: 3,
            seed: 0x5EED_F00D,
            jobs: std::thread::available_parallelism().map_or(2, usize::from),
            only: None,
        }
    }

    /// The long matrix: more damage variants per operation and many more random samples.
    pub fn long() -> Self {
        Self {
            torn_seeds: 8,
            erase_seeds: 8,
            random_samples: 3000,
            recovery_faults: 5,
            ..Self::ci()
        }
    }
}

/// The result of one cell of the matrix.
#[derive(Clone, Debug, Default)]
pub struct CellReport {
    /// `shape write-size flow`.
    pub name: String,
    /// Faults that struck.
    pub points: u64,
    /// Runs that broke a promise, with the reason.
    pub failures: Vec<String>,
}

/// The whole matrix's result.
#[derive(Debug, Default)]
pub struct Summary {
    /// Every cell, in matrix order.
    pub cells: Vec<CellReport>,
}

impl Summary {
    /// Interruption points (faults that struck).
    pub fn points(&self) -> u64 {
        self.cells.iter().map(|c| c.points).sum()
    }

    /// Runs that broke a promise.
    pub fn failures(&self) -> usize {
        self.cells.iter().map(|c| c.failures.len()).sum()
    }
}

/// Runs the matrix.
pub fn run(options: &Options) -> Summary {
    let mut cells = Vec::new();
    for shape in &options.shapes {
        for write in &options.write_sizes {
            for flow in &options.flows {
                let name = cell_name(*shape, *write, *flow);
                if options.only.as_ref().is_none_or(|only| name.contains(only.as_str())) {
                    cells.push((*shape, *write, *flow));
                }
            }
        }
    }
    let next = AtomicUsize::new(0);
    let reports = Mutex::new(vec![CellReport::default(); cells.len()]);
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(shape, write, flow)) = cells.get(index) else {
                        break;
                    };
                    let report = run_cell(shape, write, flow, options);
                    reports.lock().expect("no worker panics")[index] = report;
                }
            });
        }
    });
    Summary { cells: reports.into_inner().expect("no worker panics") }
}

/// Runs one cell: `flow` on `shape` with `write`-byte writes.
pub fn run_cell(shape: Shape, write: usize, flow: Flow, options: &Options) -> CellReport {
    macro_rules! dispatch {
        ($($w:literal)*) => {
            match (write, shape.erase_size) {
                $(
                    ($w, 1024) => cell::<$w, 1024>(shape, flow, options),
                    ($w, 4096) => cell::<$w, 4096>(shape, flow, options),
                    ($w, 16384) => cell::<$w, 16384>(shape, flow, options),
                )*
                other => panic!("no simulated flash for (write size, erase size) {other:?}"),
            }
        };
    }
    let mut report = dispatch!(1 2 4 8 16 32);
    report.name = cell_name(shape, write, flow);
    report
}

fn cell_name(shape: Shape, write: usize, flow: Flow) -> String {
    format!("{} write={write} erased={:#04x} {}", shape.name, bootloader::ERASED_VALUE, flow.name())
}

fn cell<const W: usize, const E: usize>(shape: Shape, flow: Flow, options: &Options) -> CellReport {
    let images = flow.images(&shape);
    let start = flow.start::<W, E>(shape, &images);
    let plan = Plan::record(flow, &start, &images);
    let mut report = CellReport::default();
    let mut record = |point: Point, result: Result<u32, String>| match result {
        Ok(struck) => report.points += u64::from(struck),
        Err(why) => {
            report.points += 1;
            report.failures.push(format!("{point}: {why}"));
        }
    };
    for (index, operation) in plan.operations.iter().enumerate() {
        let at = u32::try_from(index + 1).expect("few operations");
        for kind in FaultKind::ALL.into_iter().filter(|k| k.applies_to(operation)) {
            let variants = match kind {
                FaultKind::Cut => 1,
                FaultKind::TornWrite => options.torn_seeds,
                FaultKind::PartialErase | FaultKind::RandomErase => options.erase_seeds,
            };
            for seed in 0..variants {
                let point = Point {
                    operation: at,
                    kind,
                    seed: seed.wrapping_mul(0x9E37_79B9) ^ u64::from(at),
                };
                record(point, point::run(flow, &start, &images, &plan, point, None));
            }
        }
    }
    let horizon = u32::try_from(plan.operations.len()).expect("few operations");
    let cell_seed = options.seed ^ hash(shape.name) ^ (W as u64) << 32 ^ hash(flow.name());
    for sample in 0..options.random_samples {
        let mut rng = SplitMix(cell_seed ^ u64::from(sample).wrapping_mul(0xA24B_AED4_963E_E407));
        let index = rng.below(plan.operations.len());
        let kinds: Vec<_> =
            FaultKind::ALL.into_iter().filter(|k| k.applies_to(&plan.operations[index])).collect();
        let point = Point {
            operation: u32::try_from(index + 1).expect("few operations"),
            kind: kinds[rng.below(kinds.len())],
            seed: rng.next_u64(),
        };
        let recovery = Recovery { rng, faults_left: options.recovery_faults, horizon };
        let result = point::run(flow, &start, &images, &plan, point, Some(recovery));
        record(point, result.map_err(|why| format!("random sample {sample}: {why}")));
    }
    report
}

fn hash(name: &str) -> u64 {
    name.bytes()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}
