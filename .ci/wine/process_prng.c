/* Wine 8.0's bcryptprimitives.dll has no ProcessPrng, which Rust's std
 * imports on Windows for its random numbers: without it every Rust program
 * exits with status 53 before `main`. This stand-in, copied into the Wine
 * prefix's system32, forwards to BCryptGenRandom. Test machines only. */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE buffer, SIZE_T length)
{
    NTSTATUS status = BCryptGenRandom(NULL, buffer, (ULONG)length,
                                      BCRYPT_USE_SYSTEM_PREFERRED_RNG);
    return status == 0;
}
