//! The thin syscall shim: every `unsafe` block of halb lives here, each with a
//! `// SAFETY:` line. Everything exported is a safe function or type.
//!
//! What is here: pipes and `splice(2)` for zero-copy L4 forwarding, `O_NONBLOCK`,
//! `shutdown(2)` on a raw descriptor, resource limits, and the shard's epoll instance
//! (`runtime::reactor`); for VRRP, in submodules: [`rawip`] (the IP-protocol-112 socket's
//! options and ancillary data) and [`netdev`] (link-layer frames for gratuitous ARP and
//! unsolicited neighbour advertisements), and [`unshare_network`] for tests that need a
//! private network namespace.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

pub mod netdev;
pub mod rawip;

/// Turn a libc return value into an `io::Result`, reading `errno` on -1.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn check_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// Set `O_NONBLOCK` on a descriptor (sockets handed out by glommio are blocking; splice
/// needs them non-blocking so that it never parks the shard's thread).
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // A socket's only file status flag in use is O_NONBLOCK, so one F_SETFL (no F_GETFL
    // first) is enough.
    // SAFETY: fcntl on an integer descriptor has no memory-safety preconditions; an invalid
    // descriptor yields EBADF.
    check(unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) }).map(|_| ())
}

/// `recv(2)` that never blocks, whatever the socket's own O_NONBLOCK flag.
/// `WouldBlock` means nothing is there yet; `Ok(0)` means end of stream.
pub fn recv_now(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of buf.len() bytes for the whole call.
    check_size(unsafe {
        libc::recv(
            fd,
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    })
}

/// `send(2)` that never blocks and never raises SIGPIPE. May write less than `buf`.
pub fn send_now(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of buf.len() bytes for the whole call.
    check_size(unsafe {
        libc::send(
            fd,
            buf.as_ptr() as *const libc::c_void,
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    })
}

/// `shutdown(2)` on a raw socket descriptor. Used to cut connections at hard stop and to
/// wake the other direction of a connection that failed, without owning the socket.
pub fn shutdown(fd: RawFd, how: std::net::Shutdown) -> io::Result<()> {
    let how = match how {
        std::net::Shutdown::Read => libc::SHUT_RD,
        std::net::Shutdown::Write => libc::SHUT_WR,
        std::net::Shutdown::Both => libc::SHUT_RDWR,
    };
    // SAFETY: shutdown takes an integer descriptor and a flag; no memory is passed.
    check(unsafe { libc::shutdown(fd, how) }).map(|_| ())
}

/// A kernel pipe used as the in-kernel buffer between two sockets for `splice(2)`.
/// Both ends are non-blocking and close-on-exec.
#[derive(Debug)]
pub struct Pipe {
    read_end: OwnedFd,
    write_end: OwnedFd,
    /// Bytes currently held in the pipe (spliced in, not yet spliced out).
    pub buffered: usize,
}

impl Pipe {
    /// Create a pipe; `size` (bytes) is applied with `F_SETPIPE_SZ` when given (the kernel
    /// rounds it up to a power of two pages and caps it at /proc/sys/fs/pipe-max-size).
    pub fn new(size: Option<u32>) -> io::Result<Pipe> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` is a valid, writable array of two c_ints as pipe2 requires.
        check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) })?;
        // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
        let (read_end, write_end) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        if let Some(size) = size {
            // SAFETY: fcntl with F_SETPIPE_SZ takes an integer argument; no memory is passed.
            check(unsafe {
                libc::fcntl(
                    write_end.as_raw_fd(),
                    libc::F_SETPIPE_SZ,
                    size as libc::c_int,
                )
            })?;
        }
        Ok(Pipe {
            read_end,
            write_end,
            buffered: 0,
        })
    }

    /// Move up to `len` bytes from socket `from` into the pipe. `Ok(0)` means end of stream.
    /// `WouldBlock` means the socket has nothing to read (or the pipe is full).
    pub fn fill_from(&mut self, from: RawFd, len: usize) -> io::Result<usize> {
        let n = splice(from, self.write_end.as_raw_fd(), len)?;
        self.buffered += n;
        Ok(n)
    }

    /// Move what the pipe holds into socket `to`. `WouldBlock` means the socket's send
    /// buffer is full.
    pub fn drain_into(&mut self, to: RawFd) -> io::Result<usize> {
        let n = splice(self.read_end.as_raw_fd(), to, self.buffered)?;
        self.buffered -= n;
        Ok(n)
    }
}

/// `splice(2)` between two descriptors, one of which is a pipe, never blocking on the pipe
/// and moving pages instead of copying where the kernel can.
fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: null offsets are allowed for pipes and sockets; no user memory is involved.
    check_size(unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    })
}

/// A resource limit pair (soft, hard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The value in force.
    pub soft: u64,
    /// The ceiling an unprivileged process may raise `soft` to.
    pub hard: u64,
}

/// Which resource limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// RLIMIT_NOFILE: open descriptors.
    OpenFiles,
    /// RLIMIT_MEMLOCK: locked memory (io_uring rings and registered buffers).
    LockedMemory,
}

impl Resource {
    fn raw(self) -> libc::__rlimit_resource_t {
        match self {
            Resource::OpenFiles => libc::RLIMIT_NOFILE,
            Resource::LockedMemory => libc::RLIMIT_MEMLOCK,
        }
    }
}

/// Read a resource limit (`u64::MAX` stands for unlimited).
pub fn get_limit(resource: Resource) -> io::Result<Limit> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit struct.
    check(unsafe { libc::getrlimit(resource.raw(), &mut lim) })?;
    Ok(Limit {
        soft: lim.rlim_cur,
        hard: lim.rlim_max,
    })
}

/// Set the soft limit of a resource (must be ≤ hard unless running privileged).
pub fn set_soft_limit(resource: Resource, soft: u64, hard: u64) -> io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `lim` is a valid rlimit struct, read by the kernel only.
    check(unsafe { libc::setrlimit(resource.raw(), &lim) }).map(|_| ())
}

/// Accept one connection now from a non-blocking listener, with its peer address; the
/// socket is non-blocking. `WouldBlock` when none is waiting (the caller then awaits the
/// listener's readability, see `runtime::reactor`). One syscall, where glommio's accept
/// costs four.
pub fn accept_now(listener: RawFd) -> io::Result<(OwnedFd, Option<std::net::SocketAddr>)> {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` and `len` are valid for writes and `len` holds storage's size.
    let fd = check(unsafe {
        libc::accept4(
            listener,
            &mut storage as *mut libc::sockaddr_storage as *mut libc::sockaddr,
            &mut len,
            libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
        )
    })?;
    // SAFETY: `fd` is a freshly accepted socket owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: accept4 wrote a socket address of `len` bytes into `storage`.
    let peer = unsafe { socket2::SockAddr::new(storage, len) }.as_socket();
    Ok((fd, peer))
}

/// An edge-triggered epoll instance (one per shard, see `runtime::reactor`).
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

/// One readiness event returned by [`Epoll::wait`].
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct EpollEvent(libc::epoll_event);

impl EpollEvent {
    /// An empty event (to size the buffer handed to [`Epoll::wait`]).
    pub const EMPTY: EpollEvent = EpollEvent(libc::epoll_event { events: 0, u64: 0 });

    /// The token given at registration.
    pub fn token(&self) -> u64 {
        self.0.u64
    }

    /// A read would not block now (data, end of stream, or an error to report).
    pub fn readable(&self) -> bool {
        let ev = self.0.events;
        ev & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0
    }

    /// The peer ended its stream, or the socket hung up or failed.
    pub fn closed(&self) -> bool {
        let ev = self.0.events;
        ev & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0
    }

    /// A write would not block now (room, or an error to report).
    pub fn writable(&self) -> bool {
        let ev = self.0.events;
        ev & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0
    }
}

impl Epoll {
    /// A new epoll instance (close-on-exec).
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes a flag and returns a new descriptor or -1.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: `fd` is a fresh descriptor owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Epoll { fd })
    }

    /// Watch `fd` for input, output and hang-up, edge-triggered, reporting `token`. Once:
    /// the registration lasts until the descriptor's last close.
    pub fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: token,
        };
        // SAFETY: `event` is a valid epoll_event for the duration of the call (the kernel
        // copies it); an invalid `fd` yields EBADF.
        check(unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) })
            .map(|_| ())
    }

    /// The events ready now (never blocks): fills the start of `events`, returns how many.
    pub fn wait(&self, events: &mut [EpollEvent]) -> io::Result<usize> {
        let max = events.len().min(libc::c_int::MAX as usize) as libc::c_int;
        // SAFETY: `events` is valid for writes of `max` ≤ events.len() epoll_events
        // (EpollEvent is repr(transparent) over epoll_event); timeout 0 never blocks.
        let n = check(unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                events.as_mut_ptr() as *mut libc::epoll_event,
                max,
                0,
            )
        })?;
        Ok(n as usize)
    }

    /// A glommio stream on a duplicate of the epoll descriptor: glommio arms an io_uring
    /// readability poll for it at once, so its first read completes (with an error, an
    /// epoll descriptor is no socket) once an event is ready. How the reactor sleeps.
    pub fn glommio_waiter(&self) -> io::Result<glommio::net::TcpStream> {
        // SAFETY: F_DUPFD_CLOEXEC takes an integer argument; no memory is passed.
        let dup = check(unsafe { libc::fcntl(self.fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 0) })?;
        // SAFETY: `dup` is a fresh descriptor owned by nobody else; the stream takes
        // ownership and closes it on drop (the epoll instance stays open through `fd`).
        Ok(unsafe { glommio::net::TcpStream::from_raw_fd(dup) })
    }
}

/// TCP_NODELAY on a socket: without it, small writes wait for delayed ACKs.
pub fn set_nodelay(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` is a valid c_int for the duration of the call and its size is passed.
    check(unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            &on as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    })
    .map(|_| ())
}

/// Start a non-blocking TCP connect to `address`. The connection may not be established
/// yet when this returns: a zero-length `send` then returns 0 once it is, `WouldBlock`
/// while it is in progress, or the connect error. On loopback the handshake completes
/// inside `connect(2)` itself.
pub fn connect_start(address: std::net::SocketAddr) -> io::Result<OwnedFd> {
    let domain = socket2::Domain::for_address(address);
    let socket = socket2::Socket::new(
        domain,
        socket2::Type::STREAM.nonblocking().cloexec(),
        Some(socket2::Protocol::TCP),
    )?;
    match socket.connect(&address.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(OwnedFd::from(socket))
}

/// The local address of socket `fd` (`getsockname`).
pub fn local_addr(fd: RawFd) -> io::Result<std::net::SocketAddr> {
    // SAFETY: the caller passes a descriptor it keeps open for the duration of the call;
    // the borrow does not outlive this function.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    socket2::SockRef::from(&borrowed)
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an IP socket"))
}

/// Look up a user's uid and primary gid by name.
pub fn lookup_user(name: &str) -> io::Result<Option<(u32, u32)>> {
    let cname = std::ffi::CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: passwd is plain old data; all-zero is a valid value to be filled in.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; `buf` outlives the use of `pwd`'s
    // string fields (we read only the numeric ids).
    let rc = unsafe {
        libc::getpwnam_r(
            cname.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok((!result.is_null()).then_some((pwd.pw_uid, pwd.pw_gid)))
}

/// Look up a group's gid by name.
pub fn lookup_group(name: &str) -> io::Result<Option<u32>> {
    let cname = std::ffi::CString::new(name).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: group is plain old data; all-zero is a valid value to be filled in.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; we read only the numeric id.
    let rc = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok((!result.is_null()).then_some(grp.gr_gid))
}

/// The real user id of this process.
pub fn current_uid() -> u32 {
    // SAFETY: getuid cannot fail and takes no arguments.
    unsafe { libc::getuid() }
}

/// The real group id of this process.
pub fn current_gid() -> u32 {
    // SAFETY: getgid cannot fail and takes no arguments.
    unsafe { libc::getgid() }
}

/// Switch the whole process (call it while single-threaded) to `uid`/`gid`, dropping
/// supplementary groups. Irreversible.
pub fn switch_identity(uid: u32, gid: u32) -> io::Result<()> {
    let groups = [gid];
    // SAFETY: `groups` is a valid array of one gid_t for the duration of the call.
    check(unsafe { libc::setgroups(1, groups.as_ptr()) })?;
    // SAFETY: plain integer arguments.
    check(unsafe { libc::setgid(gid) })?;
    // SAFETY: plain integer argument.
    check(unsafe { libc::setuid(uid) })?;
    Ok(())
}

/// The CPUs this process may run on (its affinity mask), in ascending order.
pub fn allowed_cpus() -> Vec<usize> {
    let mut ids: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    ids.sort_unstable();
    ids
}

/// Move the calling thread (only it) into a new, empty network namespace: it then sees
/// only its own loopback (down), and child processes it starts (`ip link add ...`) share
/// that namespace. For root-only tests of VRRP sockets and netlink that must not touch the
/// host's interfaces. Needs `CAP_SYS_ADMIN`.
pub fn unshare_network() -> io::Result<()> {
    // SAFETY: unshare(2) takes a flag word and touches no memory of ours; CLONE_NEWNET
    // affects only the calling thread's namespace membership.
    check(unsafe { libc::unshare(libc::CLONE_NEWNET) })?;
    Ok(())
}

/// Move the calling thread (only it) into the network namespace `path` (for example
/// `/run/netns/NAME`, as made by `ip netns add NAME`): sockets it opens afterwards, and
/// processes it starts, live there. For tests that run a backend or a client inside a
/// namespace they created. Needs `CAP_SYS_ADMIN`.
pub fn enter_network(path: &std::path::Path) -> io::Result<()> {
    let file = std::fs::File::open(path)?;
    // SAFETY: setns(2) on a descriptor we own (kept open by `file` for the call);
    // CLONE_NEWNET checks that it is a network namespace.
    check(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn pipe_splices_between_sockets() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (b, _) = listener.accept().unwrap();
        let listener2 = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(listener2.local_addr().unwrap()).unwrap();
        let (mut d, _) = listener2.accept().unwrap();
        set_nonblocking(b.as_raw_fd()).unwrap();
        let mut pipe = Pipe::new(Some(1 << 16)).unwrap();
        a.write_all(b"hello splice").unwrap();
        let mut moved = 0;
        while moved < 12 {
            match pipe.fill_from(b.as_raw_fd(), 1 << 16) {
                Ok(n) => moved += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(pipe.buffered, 12);
        pipe.drain_into(c.as_raw_fd()).unwrap();
        assert_eq!(pipe.buffered, 0);
        let mut got = [0u8; 12];
        d.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello splice");
    }

    #[test]
    fn limits_are_readable() {
        let l = get_limit(Resource::OpenFiles).unwrap();
        assert!(l.soft <= l.hard);
    }
}
