//! rune-sim over real HTTP on 127.0.0.1 (port 0): wire formats of both APIs, token
//! accounting, scripted answers, fault injection, timing, and the command-line flags.

mod answers;
mod args;
mod faults;
mod harness;
mod ollama;
mod openai;
mod timing;
