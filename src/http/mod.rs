//! HTTP/1
