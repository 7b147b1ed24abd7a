# Build the SPINECT planner one-folder bundle (PyInstaller) on Windows in a fresh venv.
#
#   powershell -ExecutionPolicy Bypass -File installers\build.ps1            # -> build\dist\spinect\
#   powershell -ExecutionPolicy Bypass -File installers\build.ps1 -Smoke     # ... and smoke-test it
#   powershell -ExecutionPolicy Bypass -File installers\build.ps1 -Installer # ... and run Inno Setup
#
# Parameters / environment:
#   -Cuda            CUDA torch: $env:SPINECT_TORCH defaults to
#                    "torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128"
#   $env:SPINECT_TORCH      pip arguments that install torch (default "torch==2.13.0", CPU wheel)
#   $env:SPINECT_BUILD_DIR  work folder (default build\ in the checkout)
#   -Python PATH     interpreter that creates the venv (default "py -3.11", else "python")
#   -SkipInstall     reuse the venv as it is
# Needs no admin rights. -Installer needs Inno Setup 6 (ISCC.exe on PATH or in its default folder;
# a per-user Inno Setup install works too).
[CmdletBinding()]
param(
    [switch]$Smoke,
    [switch]$SmokeOnly,
    [switch]$Installer,
    [switch]$Cuda,
    [switch]$SkipInstall,
    [string]$Python = ""
)
$ErrorActionPreference = "Stop"
$Root = (Resolve-Path (Join-Path $PSScriptRoot "..")).Path
Set-Location $Root

$BuildDir = if ($env:SPINECT_BUILD_DIR) { $env:SPINECT_BUILD_DIR } else { Join-Path $Root "build" }
$Venv = Join-Path $BuildDir "venv"
$Dist = Join-Path $BuildDir "dist"
$Bundle = Join-Path $Dist "spinect"
$TorchSpec = if ($env:SPINECT_TORCH) { $env:SPINECT_TORCH }
             elseif ($Cuda) { "torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128" }
             else { "torch==2.13.0" }
New-Item -ItemType Directory -Force -Path $BuildDir | Out-Null
function Log($msg) { Write-Host "build.ps1: $msg" }
function Invoke-Checked([string]$exe, [string[]]$argv) {
    & $exe @argv
    if ($LASTEXITCODE -ne 0) { throw "$exe $($argv -join ' ') failed with exit code $LASTEXITCODE" }
}

if (-not $SmokeOnly) {
    $Py = Join-Path $Venv "Scripts\python.exe"
    if (-not (Test-Path $Py)) {
        Log "creating $Venv"
        if ($Python) { Invoke-Checked $Python @("-m", "venv", $Venv) }
        elseif (Get-Command py -ErrorAction SilentlyContinue) { Invoke-Checked "py" @("-3.11", "-m", "venv", $Venv) }
        else { Invoke-Checked "python" @("-m", "venv", $Venv) }
    }
    if (-not $SkipInstall) {
        Log "installing $TorchSpec first (an unpinned torch pulls a multi-GB CUDA build)"
        Invoke-Checked $Py @("-m", "pip", "install", "-q", "--upgrade", "pip")
        Invoke-Checked $Py (@("-m", "pip", "install", "-q") + ($TorchSpec -split "\s+"))
        Log "installing spinect[app] and PyInstaller"
        Invoke-Checked $Py @("-m", "pip", "install", "-q", "$Root[app]", "pyinstaller>=6.10",
                             "pyinstaller-hooks-contrib>=2024.8")
    }
    $sw = [Diagnostics.Stopwatch]::StartNew()
    if (Test-Path $Bundle) { Remove-Item -Recurse -Force $Bundle }
    Invoke-Checked $Py @("-m", "PyInstaller", "--noconfirm", "--log-level", "WARN", "--distpath", $Dist,
                         "--workpath", (Join-Path $BuildDir "work"), "installers\spinect.spec")
    Log ("PyInstaller took {0:N0} s" -f $sw.Elapsed.TotalSeconds)
}

$AppExe = Join-Path $Bundle "spinect-app.exe"
$CliExe = Join-Path $Bundle "spinect.exe"
if (-not (Test-Path $AppExe)) { throw "no bundle at $Bundle" }
$SizeMB = [math]::Round(((Get-ChildItem -Recurse -File $Bundle | Measure-Object -Sum Length).Sum) / 1MB)
Log "bundle ${Bundle}: $SizeMB MB"

if ($Smoke -or $SmokeOnly) {
    $SmokeDir = Join-Path $BuildDir "smoke"
    if (Test-Path $SmokeDir) { Remove-Item -Recurse -Force $SmokeDir }
    New-Item -ItemType Directory -Force -Path $SmokeDir | Out-Null
    $env:SPINECT_LOG_DIR = Join-Path $SmokeDir "logs"
    $sw = [Diagnostics.Stopwatch]::StartNew()
    Invoke-Checked $CliExe @("--version")
    $cliStart = [math]::Round($sw.Elapsed.TotalSeconds, 2)
    Log "frozen CLI --version: $cliStart s"
    Invoke-Checked $CliExe @("phantom", (Join-Path $SmokeDir "case"), "--seed", "0", "--quiet", "--force")
    # spinect-app.exe is a windowed program: Start-Process -Wait gives its exit code.
    $sw = [Diagnostics.Stopwatch]::StartNew()
    $p = Start-Process -FilePath $AppExe -Wait -PassThru -ArgumentList @(
        "`"$(Join-Path $SmokeDir 'case\ct.nii.gz')`"", "--segmentation",
        "`"$(Join-Path $SmokeDir 'case\labels.nii.gz')`"", "--plan", "--screenshot",
        "`"$(Join-Path $SmokeDir 'out.png')`"", "--quit", "--settings",
        "`"$(Join-Path $SmokeDir 'settings.ini')`"")
    $appSeconds = [math]::Round($sw.Elapsed.TotalSeconds, 1)
    Log "frozen app exit code $($p.ExitCode) after $appSeconds s (its output: $env:SPINECT_LOG_DIR\console.log)"
    $CheckPy = Join-Path $Venv "Scripts\python.exe"
    if (-not (Test-Path $CheckPy)) { $CheckPy = "python" }
    & $CheckPy installers\check_screenshot.py (Join-Path $SmokeDir "out.png")
    $checkRc = $LASTEXITCODE
    @{ bundle_mb = $SizeMB; cli_version_s = $cliStart; app_smoke_s = $appSeconds;
       app_exit_code = $p.ExitCode; screenshot_ok = ($checkRc -eq 0) } |
        ConvertTo-Json | Set-Content (Join-Path $SmokeDir "result.json")
    if ($p.ExitCode -ne 0 -or $checkRc -ne 0) { throw "SMOKE FAILED (app $($p.ExitCode), check $checkRc)" }
    Log "SMOKE OK"
}

if ($Installer) {
    $Iscc = (Get-Command ISCC.exe -ErrorAction SilentlyContinue).Source
    if (-not $Iscc) {
        foreach ($c in @("$env:LOCALAPPDATA\Programs\Inno Setup 6\ISCC.exe",
                         "${env:ProgramFiles(x86)}\Inno Setup 6\ISCC.exe")) {
            if (Test-Path $c) { $Iscc = $c; break }
        }
    }
    if (-not $Iscc) { throw "Inno Setup 6 (ISCC.exe) not found" }
    $Version = (& (Join-Path $Bundle "spinect.exe") --version).Split(" ")[-1]
    Invoke-Checked $Iscc @("/DAppVersion=$Version", "/DBundleDir=$Bundle", "/O$Dist",
                           "installers\windows\spinect.iss")
    Log "installer: $Dist\spinect-$Version-windows-x64-setup.exe"
}
