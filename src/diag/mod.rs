//! Where mptcp-ss gets its data: the kernel (sock_diag, mptcp_pm events),
//! embedded stacks (control sockets) and packets.
