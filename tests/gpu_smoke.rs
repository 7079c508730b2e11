mod common;
use gputrain::gpu::{FusedTrainer, GpuOptions};
use gputrain::training::TrainOptions;
use gputrain::data::Task;
#[test]
fn smoke() {
    let ctx = common::gpu();
    let spec = common::tutorial_spec();
    let data = Task::Tutorial.dataset();
    let n: usize = std::env::var("N").map(|v| v.parse().unwrap()).unwrap_or(10000);
    let mut params = gputrain::init::population_parameters(&spec, gputrain::init::Init::Tutorial, 0, 0, 1).unwrap().repeat(n);
    let lrs = vec![0.5; n];
    let opts = TrainOptions { epochs: std::env::var("E").map(|v| v.parse().unwrap()).unwrap_or(20000), target_loss: None, stop_at_target: false };
    let t = FusedTrainer::new(ctx, &spec, &data, n, &GpuOptions::default()).unwrap();
    let start = std::time::Instant::now();
    let out = t.train(&mut params, &lrs, &opts, &GpuOptions::default(), &mut |_| {}).unwrap();
    let el = start.elapsed().as_secs_f64();
    eprintln!("{:?} {:?} {} s, {:e} net-epochs/s", out[0], gputrain::cpu::predict(&spec, &params[..10], &[0.05,0.1]), el, (n as f64*opts.epochs as f64)/el);
}
