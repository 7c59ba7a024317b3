//! Writing CPU caches back to memory for a mapped journal: `clwb` where CPUID reports it,
//! else `clflushopt`, else `clflush`, chosen once at run time, over every 64-byte line of
//! a range, then `sfence`. Rust has no intrinsic for the first two (platform notes §3.1),
//! so they are inline assembly; the assembler accepts them without a target feature, and
//! CPUID is checked before either runs (valgrind, for one, hides both and kills `clwb`).
//! On a DAX mapping this is what makes stores durable; on an ordinary mapping it is not
//! enough and the caller follows it with `msync`.

/// Cache line size on every x86-64 CPU with these instructions.
pub(super) const CACHE_LINE: usize = 64;

/// Which write-back instruction this CPU offers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FlushInstruction {
    Clwb,
    Clflushopt,
    Clflush,
    /// Not x86-64: nothing to issue; `msync` does all the work.
    None,
}

impl FlushInstruction {
    /// The best instruction CPUID reports (leaf 7 EBX bit 24 = CLWB, bit 23 = CLFLUSHOPT).
    #[cfg(target_arch = "x86_64")]
    pub fn detect() -> Self {
        use std::arch::x86_64::{__cpuid, __cpuid_count};
        // SAFETY: CPUID exists on every x86-64 CPU; leaf 7 is only queried when leaf 0
        // says it exists. (These became safe functions after our MSRV, 1.85.)
        #[allow(unused_unsafe)]
        let ebx = unsafe {
            if __cpuid(0).eax >= 7 {
                __cpuid_count(7, 0).ebx
            } else {
                0
            }
        };
        if ebx & (1 << 24) != 0 {
            Self::Clwb
        } else if ebx & (1 << 23) != 0 {
            Self::Clflushopt
        } else {
            Self::Clflush // part of SSE2, which x86-64 guarantees
        }
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn detect() -> Self {
        Self::None
    }

    /// Writes back every cache line overlapping `bytes`, then fences, so that these
    /// stores reach the persistence domain before any later store.
    #[cfg(target_arch = "x86_64")]
    pub fn persist(self, bytes: &[u8]) {
        use std::arch::asm;
        let start = bytes.as_ptr() as usize & !(CACHE_LINE - 1);
        let end = bytes.as_ptr() as usize + bytes.len();
        for line in (start..end).step_by(CACHE_LINE) {
            let p = line as *const u8;
            // SAFETY: `p` lies in the cache line of a byte of `bytes`, which is mapped;
            // these instructions only write the line back and change no memory. `detect`
            // chose an instruction this CPU supports.
            unsafe {
                match self {
                    Self::Clwb => asm!("clwb [{0}]", in(reg) p, options(nostack, preserves_flags)),
                    Self::Clflushopt => {
                        asm!("clflushopt [{0}]", in(reg) p, options(nostack, preserves_flags))
                    }
                    Self::Clflush => std::arch::x86_64::_mm_clflush(p),
                    Self::None => {}
                }
            }
        }
        // SAFETY: SSE is part of x86-64; sfence has no operands.
        unsafe { std::arch::x86_64::_mm_sfence() };
    }

    #[cfg(not(target_arch = "x86_64"))]
    pub fn persist(self, _bytes: &[u8]) {}
}
