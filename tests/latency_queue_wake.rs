//! glommio (vendored, patched) under slotcore's sleep hook: a task in a `Latency::Matters` task
//! queue that sleeps on a timer right when the queue's preemption timer runs out is woken.
use std::cell::Cell;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::{Latency, LocalExecutorBuilder, Placement, Shares};

/// A sleep hook as `src/runtime/netpoll.rs` installs, without sockets: it blocks in
/// `epoll_wait` on the reactor's two ring fds.
fn ring_epoll_hook() -> glommio::SleepHook {
    // SAFETY: plain syscall.
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(epfd >= 0);
    let added = Cell::new(false);
    Rc::new(move |rings: Option<[RawFd; 2]>| {
        let Some(fds) = rings else { return 0 };
        if !added.get() {
            for fd in fds {
                let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: 0 };
                // SAFETY: `ev` is valid; the ring fds live as long as the executor.
                assert_eq!(unsafe { libc::epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, &mut ev) }, 0);
            }
            added.set(true);
        }
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 4];
        // SAFETY: room for 4 events.
        unsafe { libc::epoll_wait(epfd, evs.as_mut_ptr(), 4, -1) };
        0
    })
}

fn spin_for(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// The queue's task works for a little less than its 300 µs preemption timer, then sleeps 1 µs
/// (as a snapshot step and its pause do), with nothing else on the executor: the executor goes
/// to sleep right when the preemption timer runs out, at slightly different points each time.
/// The vendored glommio used to keep that timer as the sleep's wake-up after its completion had
/// already been consumed, so it slept with no timer armed and the task never ran again.
#[test]
fn latency_queue_task_sleeping_as_its_preemption_timer_runs_out_wakes() {
    const PREEMPT: Duration = Duration::from_micros(300);
    let progress = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let (p, d) = (progress.clone(), done.clone());
    // Not joined if it stalls (it would sleep for good); the test fails first.
    std::thread::spawn(move || {
        LocalExecutorBuilder::new(Placement::Unbound).make().expect("executor").run(async move {
            glommio::set_sleep_hook(Some(ring_epoll_hook()));
            let q = glommio::executor().create_task_queue(Shares::Static(100), Latency::Matters(PREEMPT), "snapshot");
            let task = glommio::spawn_local_into(
                async move {
                    let start = Instant::now();
                    let mut i = 0u64;
                    while start.elapsed() < Duration::from_secs(5) {
                        // 260..300 µs in 40 ns steps, spread over the sweep.
                        let work = Duration::from_micros(260) + Duration::from_nanos(40 * ((i * 389) % 1000));
                        spin_for(work);
                        glommio::timer::sleep(Duration::from_micros(1)).await;
                        p.fetch_add(1, Ordering::Relaxed);
                        i += 1;
                    }
                },
                q,
            )
            .expect("spawn");
            task.await;
            glommio::set_sleep_hook(None);
            d.store(true, Ordering::Release);
        });
    });
    let mut last = (0, Instant::now());
    while !done.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(10));
        let now = progress.load(Ordering::Relaxed);
        if now != last.0 {
            last = (now, Instant::now());
        }
        assert!(
            last.1.elapsed() < Duration::from_secs(2),
            "the task in the latency queue stopped after {now} steps: its 1 µs timer never fired"
        );
    }
    eprintln!("{} steps", progress.load(Ordering::Relaxed));
}
