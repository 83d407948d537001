fn main() -> std::process::ExitCode {
    dag::app::main()
}
