//! Packetbeat's names for NFS procedures, NFSv4 operations and status codes (`nfs3.go`,
//! `nfs4.go`, `nfs_status.go`), and for RPC accept states (`request_handler.go`).

/// NFSv3 procedures by number (`nfsOpnum3`, with Packetbeat's spellings `SYM_LINK`, `MKNODE`
/// and `PATHINFO`); a higher number is `ILLEGAL`.
const V3_PROCEDURES: [&str; 22] = [
    "NULL",
    "GETATTR",
    "SETATTR",
    "LOOKUP",
    "ACCESS",
    "READLINK",
    "READ",
    "WRITE",
    "CREATE",
    "MKDIR",
    "SYM_LINK",
    "MKNODE",
    "REMOVE",
    "RMDIR",
    "RENAME",
    "LINK",
    "READDIR",
    "READDIRPLUS",
    "FSSTAT",
    "FSINFO",
    "PATHINFO",
    "COMMIT",
];

pub fn v3_procedure(proc: u32) -> &'static str {
    V3_PROCEDURES
        .get(proc as usize)
        .copied()
        .unwrap_or("ILLEGAL")
}

/// NFSv4 operations 3 (ACCESS) to 71 (CLONE), RFC 7530, 8881 and 7862.
const V4_OPERATIONS: [&str; 69] = [
    "ACCESS",
    "CLOSE",
    "COMMIT",
    "CREATE",
    "DELEGPURGE",
    "DELEGRETURN",
    "GETATTR",
    "GETFH",
    "LINK",
    "LOCK",
    "LOCKT",
    "LOCKU",
    "LOOKUP",
    "LOOKUPP",
    "NVERIFY",
    "OPEN",
    "OPENATTR",
    "OPEN_CONFIRM",
    "OPEN_DOWNGRADE",
    "PUTFH",
    "PUTPUBFH",
    "PUTROOTFH",
    "READ",
    "READDIR",
    "READLINK",
    "REMOVE",
    "RENAME",
    "RENEW",
    "RESTOREFH",
    "SAVEFH",
    "SECINFO",
    "SETATTR",
    "SETCLIENTID",
    "SETCLIENTID_CONFIRM",
    "VERIFY",
    "WRITE",
    "RELEASE_LOCKOWNER",
    "BACKCHANNEL_CTL",
    "BIND_CONN_TO_SESSION",
    "EXCHANGE_ID",
    "CREATE_SESSION",
    "DESTROY_SESSION",
    "FREE_STATEID",
    "GET_DIR_DELEGATION",
    "GETDEVICEINFO",
    "GETDEVICELIST",
    "LAYOUTCOMMIT",
    "LAYOUTGET",
    "LAYOUTRETURN",
    "SECINFO_NO_NAME",
    "SEQUENCE",
    "SET_SSV",
    "TEST_STATEID",
    "WANT_DELEGATION",
    "DESTROY_CLIENTID",
    "RECLAIM_COMPLETE",
    "ALLOCATE",
    "COPY",
    "COPY_NOTIFY",
    "DEALLOCATE",
    "IO_ADVISE",
    "LAYOUTERROR",
    "LAYOUTSTATS",
    "OFFLOAD_CANCEL",
    "OFFLOAD_STATUS",
    "READ_PLUS",
    "SEEK",
    "WRITE_SAME",
    "CLONE",
];

pub const OP_GETATTR: u32 = 9;
pub const OP_GETFH: u32 = 10;
pub const OP_LOOKUP: u32 = 15;
pub const OP_LOOKUPP: u32 = 16;
pub const OP_NVERIFY: u32 = 17;
pub const OP_PUTFH: u32 = 22;
pub const OP_PUTPUBFH: u32 = 23;
pub const OP_PUTROOTFH: u32 = 24;
pub const OP_READLINK: u32 = 27;
pub const OP_RENEW: u32 = 30;
pub const OP_RESTOREFH: u32 = 31;
pub const OP_SAVEFH: u32 = 32;
pub const OP_SECINFO: u32 = 33;
pub const OP_VERIFY: u32 = 37;
pub const OP_SEQUENCE: u32 = 53;
pub const OP_ILLEGAL: u32 = 10044;

/// An NFSv4 operation's name, `None` for a number no RFC assigns.
pub fn v4_operation(op: u32) -> Option<&'static str> {
    match op {
        OP_ILLEGAL => Some("ILLEGAL"),
        3..=71 => Some(V4_OPERATIONS[(op - 3) as usize]),
        _ => None,
    }
}

/// RPC `accept_stat` (RFC 5531), as Packetbeat names them.
pub fn accept_status(stat: u32) -> Option<&'static str> {
    [
        "success",
        "prog_unavail",
        "prog_mismatch",
        "proc_unavail",
        "garbage_args",
        "system_err",
    ]
    .get(stat as usize)
    .copied()
}

/// NFS status codes (nfsstat3 and nfsstat4 share their numbers). A code Packetbeat does not
/// know is the empty string, as its map lookup gives.
pub fn nfs_status(stat: u32) -> &'static str {
    match stat {
        0 => "NFS_OK",
        1 => "NFSERR_PERM",
        2 => "NFSERR_NOENT",
        5 => "NFSERR_IO",
        6 => "NFSERR_NXIO",
        13 => "NFSERR_ACCESS",
        17 => "NFSERR_EXIST",
        18 => "NFSERR_XDEV",
        19 => "NFSERR_NODEV",
        20 => "NFSERR_NOTDIR",
        21 => "NFSERR_ISDIR",
        22 => "NFSERR_INVAL",
        27 => "NFSERR_FBIG",
        28 => "NFSERR_NOSPC",
        30 => "NFSERR_ROFS",
        31 => "NFSERR_MLINK",
        63 => "NFSERR_NAMETOOLONG",
        66 => "NFSERR_NOTEMPTY",
        69 => "NFSERR_DQUOT",
        70 => "NFSERR_STALE",
        71 => "NFSERR_REMOTE",
        99 => "NFSERR_WFLUSH",
        10001..=10086 => NFS4_ERRORS[(stat - 10001) as usize],
        _ => "",
    }
}

/// Codes 10001 to 10086.
const NFS4_ERRORS: [&str; 86] = [
    "NFSERR_BADHANDLE",
    "NFSERR_NOT_SYNC",
    "NFSERR_BAD_COOKIE",
    "NFSERR_NOTSUPP",
    "NFSERR_TOOSMALL",
    "NFSERR_SERVERFAULT",
    "NFSERR_BADTYPE",
    "NFSERR_DELAY",
    "NFSERR_SAME",
    "NFSERR_DENIED",
    "NFSERR_EXPIRED",
    "NFSERR_LOCKED",
    "NFSERR_GRACE",
    "NFSERR_FHEXPIRED",
    "NFSERR_SHARE_DENIED",
    "NFSERR_WRONGSEC",
    "NFSERR_CLID_INUSE",
    "NFSERR_RESOURCE",
    "NFSERR_MOVED",
    "NFSERR_NOFILEHANDLE",
    "NFSERR_MINOR_VERS_MISMATCH",
    "NFSERR_STALE_CLIENTID",
    "NFSERR_STALE_STATEID",
    "NFSERR_OLD_STATEID",
    "NFSERR_BAD_STATEID",
    "NFSERR_BAD_SEQID",
    "NFSERR_NOT_SAME",
    "NFSERR_LOCK_RANGE",
    "NFSERR_SYMLINK",
    "NFSERR_RESTOREFH",
    "NFSERR_LEASE_MOVED",
    "NFSERR_ATTRNOTSUPP",
    "NFSERR_NO_GRACE",
    "NFSERR_RECLAIM_BAD",
    "NFSERR_RECLAIM_CONFLICT",
    "NFSERR_BADXDR",
    "NFSERR_LOCKS_HELD",
    "NFSERR_OPENMODE",
    "NFSERR_BADOWNER",
    "NFSERR_BADCHAR",
    "NFSERR_BADNAME",
    "NFSERR_BAD_RANGE",
    "NFSERR_LOCK_NOTSUPP",
    "NFSERR_OP_ILLEGAL",
    "NFSERR_DEADLOCK",
    "NFSERR_FILE_OPEN",
    "NFSERR_ADMIN_REVOKED",
    "NFSERR_CB_PATH_DOWN",
    "NFSERR_BADIOMODE",
    "NFSERR_BADLAYOUT",
    "NFSERR_BAD_SESSION_DIGEST",
    "NFSERR_BADSESSION",
    "NFSERR_BADSLOT",
    "NFSERR_COMPLETE_ALREADY",
    "NFSERR_CONN_NOT_BOUND_TO_SESSION",
    "NFSERR_DELEG_ALREADY_WANTED",
    "NFSERR_BACK_CHAN_BUSY",
    "NFSERR_LAYOUTTRYLATER",
    "NFSERR_LAYOUTUNAVAILABLE",
    "NFSERR_NOMATCHING_LAYOUT",
    "NFSERR_RECALLCONFLICT",
    "NFSERR_UNKNOWN_LAYOUTTYPE",
    "NFSERR_SEQ_MISORDERED",
    "NFSERR_SEQUENCE_POS",
    "NFSERR_REQ_TOO_BIG",
    "NFSERR_REP_TOO_BIG",
    "NFSERR_REP_TOO_BIG_TO_CACHE",
    "NFSERR_RETRY_UNCACHED_REP",
    "NFSERR_UNSAFE_COMPOUND",
    "NFSERR_TOO_MANY_OPS",
    "NFSERR_OP_NOT_IN_SESSION",
    "NFSERR_HASH_ALG_UNSUPP",
    "NFSERR_CONN_BINDING_NOT_ENFORCED",
    "NFSERR_CLIENTID_BUSY",
    "NFSERR_PNFS_IO_HOLE",
    "NFSERR_SEQ_FALSE_RETRY",
    "NFSERR_BAD_HIGH_SLOT",
    "NFSERR_DEADSESSION",
    "NFSERR_ENCR_ALG_UNSUPP",
    "NFSERR_PNFS_NO_LAYOUT",
    "NFSERR_NOT_ONLY_OP",
    "NFSERR_WRONG_CRED",
    "NFSERR_WRONG_TYPE",
    "NFSERR_DIRDELEG_UNAVAIL",
    "NFSERR_REJECT_DELEG",
    "NFSERR_RETURNCONFLICT",
];
