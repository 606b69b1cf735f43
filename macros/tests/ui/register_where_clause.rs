#[atexit::register]
fn cleanup()
where
    u8: Copy,
{
}

fn main() {}
