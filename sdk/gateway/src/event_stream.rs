//! [`EventStream`]: what chaincode and block event requests return.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::error::{Error, GrpcStatus};

/// Events buffered between the network and a slow consumer before the stream stops reading.
const BUFFER: usize = 64;

/// A stream of events (chaincode events, blocks) from a peer.
///
/// The request is sent as soon as the stream is created, so events committed after that
/// moment are not missed even if the stream is polled later. Implements
/// [`Stream`](tokio_stream::Stream); [`EventStream::next`] is there for callers that do not
/// want a stream-extension trait in scope. The stream ends after an error; dropping it
/// cancels the call.
pub struct EventStream<T> {
    receiver: mpsc::Receiver<Result<T, Error>>,
    task: tokio::task::AbortHandle,
}

impl<T> std::fmt::Debug for EventStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("finished", &self.task.is_finished())
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> EventStream<T> {
    /// Runs `producer` on a task that feeds the stream, bounded by `deadline`.
    pub(crate) fn spawn<F, Fut>(deadline: Option<Duration>, producer: F) -> Self
    where
        F: FnOnce(mpsc::Sender<Result<T, Error>>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (sender, receiver) = mpsc::channel(BUFFER);
        let on_deadline = sender.clone();
        let work = producer(sender);
        let task = tokio::spawn(async move {
            match deadline {
                None => work.await,
                Some(deadline) => {
                    if tokio::time::timeout(deadline, work).await.is_err() {
                        let status = GrpcStatus::local(
                            tonic::Code::DeadlineExceeded,
                            format!("event stream deadline of {deadline:?} reached"),
                        );
                        // The consumer may be gone already; nothing to report then.
                        let _ = on_deadline.send(Err(Error::Events { status })).await;
                    }
                }
            }
        });
        Self {
            receiver,
            task: task.abort_handle(),
        }
    }

    /// The next event; `None` once the stream has ended.
    pub async fn next(&mut self) -> Option<Result<T, Error>> {
        self.receiver.recv().await
    }
}

impl<T> tokio_stream::Stream for EventStream<T> {
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.receiver.poll_recv(cx)
    }
}

impl<T> Drop for EventStream<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}
