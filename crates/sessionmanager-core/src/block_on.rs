//! Driving the store futures from synchronous code (the Python binding, scripts).

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Instant;

/// Runs a future to completion on the calling thread.
///
/// Futures from [`MemoryStore`](crate::MemoryStore) are ready on their first
/// poll, so they cost one poll with a no-op waker and no allocation. A future
/// that has to wait (a network store) parks the thread until it is woken.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    if let Poll::Ready(output) = future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        return output;
    }
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        // A wake that raced ahead of this park leaves the token set, so no wake is lost.
        thread::park();
    }
}

/// Like [`block_on`], but on a thread the [`interrupt`](crate::interrupt)
/// hook calls interruptible, gives up (dropping `future`) with
/// [`Error::Interrupted`](crate::Error::Interrupted) when the hook asks, checked
/// every [`CHECK_EVERY`](crate::interrupt::CHECK_EVERY) of waiting.
pub fn block_on_interruptible<T>(
    future: impl Future<Output = crate::Result<T>>,
) -> crate::Result<T> {
    let mut future = pin!(future);
    if let Poll::Ready(output) = future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        return output;
    }
    if !crate::interrupt::interruptible() {
        return block_on(future);
    }
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut checked = Instant::now();
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        thread::park_timeout(crate::interrupt::CHECK_EVERY);
        if checked.elapsed() >= crate::interrupt::CHECK_EVERY {
            if crate::interrupt::interrupted() {
                return Err(crate::Error::Interrupted);
            }
            checked = Instant::now();
        }
    }
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ready_future_returns_its_value() {
        assert_eq!(block_on(async { 7 }), 7);
    }

    #[test]
    fn pending_future_is_woken_from_another_thread() {
        use std::sync::Mutex;
        use std::sync::atomic::{AtomicBool, Ordering};
        // Like real futures, this one keeps the waker of its latest poll.
        let latest: Arc<Mutex<Option<Waker>>> = Arc::default();
        let ready = Arc::new(AtomicBool::new(false));
        let (waker_slot, flag) = (latest.clone(), ready.clone());
        let waiter = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            flag.store(true, Ordering::SeqCst);
            if let Some(waker) = waker_slot.lock().unwrap().take() {
                waker.wake();
            }
        });
        let value = block_on(std::future::poll_fn(|cx| {
            *latest.lock().unwrap() = Some(cx.waker().clone());
            if ready.load(Ordering::SeqCst) {
                Poll::Ready(42)
            } else {
                Poll::Pending
            }
        }));
        waiter.join().unwrap();
        assert_eq!(value, 42);
    }
}
