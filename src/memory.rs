//! Giving memory back after a large mail.
//!
//! glibc raises its mmap threshold to the size of each large buffer freed (up to 32 MB), so the
//! buffers of the next large mails come from its heaps, which do not shrink by themselves: five
//! mails with 20-48 MB attachments left the daemon at 435 MB where it never held more than about
//! 200 at once. Mapping every buffer over 1-4 MB on its own fixes that too, but cost 5-10% of the
//! ingest rate of ordinary mail (measured); trimming after a large mail costs nothing otherwise.

/// Buffers of 16 MB and more (a large raw message, a decoded attachment, a mail being sent) are
/// mapped on their own, so they go back to the system when freed. Call once, before threads start.
pub fn map_large_buffers_apart() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any other thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 << 20);
    }
}

/// Returns the free memory of the allocator's heaps to the system. Call after handling a mail of
/// several MB; a no-op where the allocator is not glibc's.
pub fn release_after_large_mail() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages of the allocator's own heaps.
    unsafe {
        libc::malloc_trim(0);
    }
}
