; Inno Setup 6 script: per-user installer of the SPINECT planner bundle (no admin rights).
;
;   ISCC.exe /DAppVersion=0.1.0 /DBundleDir=..\..\build\dist\spinect installers\windows\spinect.iss
;   (installers\build.ps1 -Installer runs this after the PyInstaller build)
;
; Installs into %LOCALAPPDATA%\Programs\SPINECT planner, adds a Start-menu entry (and optionally a
; desktop shortcut) for the current user, and registers an uninstaller under
; "Apps & features" (HKCU). Logs of the app go to %LOCALAPPDATA%\spinect\logs.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef BundleDir
  #define BundleDir "..\..\build\dist\spinect"
#endif

[Setup]
AppId={{6C1D8E9A-52B4-4E57-9D3A-5F0C2B7A9E11}
AppName=SPINECT planner
AppVersion={#AppVersion}
AppPublisher=SPINECT project
AppComments=L5/S1 transforaminal injection planning on CT. Research use; not a certified medical device.
DefaultDirName={localappdata}\Programs\SPINECT planner
DefaultGroupName=SPINECT planner
DisableProgramGroupPage=yes
; Per-user install: no UAC prompt, nothing written outside the user's profile.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputBaseFilename=spinect-{#AppVersion}-windows-x64-setup
SetupIconFile=..\icons\spinect.ico
UninstallDisplayIcon={app}\spinect-app.exe
Compression=lzma2/max
SolidCompression=yes
; torch + Qt + VTK make a 1-2 GB bundle: one setup file, no disk spanning.
DiskSpanning=no
WizardStyle=modern
ChangesAssociations=no

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Dirs]
Name: "{localappdata}\spinect\logs"; Flags: uninsneveruninstall

[Icons]
Name: "{autoprograms}\SPINECT planner"; Filename: "{app}\spinect-app.exe"; WorkingDir: "{userdocs}"
Name: "{autoprograms}\SPINECT planner logs"; Filename: "{localappdata}\spinect\logs"
Name: "{autodesktop}\SPINECT planner"; Filename: "{app}\spinect-app.exe"; WorkingDir: "{userdocs}"; Tasks: desktopicon

[Run]
Filename: "{app}\spinect-app.exe"; Description: "{cm:LaunchProgram,SPINECT planner}"; Flags: nowait postinstall skipifsilent

[UninstallDelete]
; Files written next to the program at run time (e.g. __pycache__); user data and logs stay.
Type: filesandordirs; Name: "{app}"
