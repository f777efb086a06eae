"""Bank answers as banks write them, for tests: pain.002 status reports and camt.054 notifications."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

NS = "urn:iso:std:iso:20022:tech:xsd:"


def pain002(
    txs: Sequence[tuple[str, str, str]],
    *,
    version: str = "pain.002.001.10",
    msg_id: str = "BANK-STS-1",
    original_msg_id: str = "PDORIGINAL",
    group_status: str | None = None,
    group_reason: str = "",
) -> bytes:
    """A pain.002: `txs` are (OrgnlEndToEndId, TxSts, reason code or "")."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<Document xmlns="{NS}{version}">\n<CstmrPmtStsRpt>\n',
        f"  <GrpHdr><MsgId>{msg_id}</MsgId><CreDtTm>2026-01-06T09:00:00</CreDtTm></GrpHdr>\n",
        "  <OrgnlGrpInfAndSts>\n",
        f"    <OrgnlMsgId>{escape(original_msg_id)}</OrgnlMsgId>\n",
        "    <OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId>\n",
    ]
    if group_status:
        parts.append(f"    <GrpSts>{group_status}</GrpSts>\n")
        if group_reason:
            parts.append(f"    <StsRsnInf><Rsn><Cd>{group_reason}</Cd></Rsn></StsRsnInf>\n")
    parts.append("  </OrgnlGrpInfAndSts>\n")
    if txs:
        parts.append("  <OrgnlPmtInfAndSts>\n    <OrgnlPmtInfId>PMT-1</OrgnlPmtInfId>\n")
        for e2e, status, reason in txs:
            parts.append("    <TxInfAndSts>\n")
            parts.append(f"      <OrgnlEndToEndId>{escape(e2e)}</OrgnlEndToEndId>\n")
            parts.append(f"      <TxSts>{status}</TxSts>\n")
            if reason:
                parts.append(f"      <StsRsnInf><Rsn><Cd>{reason}</Cd></Rsn>")
                parts.append(f"<AddtlInf>Reason {reason}</AddtlInf></StsRsnInf>\n")
            parts.append("    </TxInfAndSts>\n")
        parts.append("  </OrgnlPmtInfAndSts>\n")
    parts.append("</CstmrPmtStsRpt>\n</Document>\n")
    return "".join(parts).encode()


def camt054(
    entries: Sequence[tuple[str, str, str, str]],
    *,
    version: str = "camt.054.001.08",
    msg_id: str = "BANK-NTF-1",
    currency: str = "EUR",
) -> bytes:
    """A camt.054: `entries` are (EndToEndId, amount, CdtDbtInd, return reason or "" for a booking)."""
    status = "<Sts>BOOK</Sts>" if version.endswith(".02") else "<Sts><Cd>BOOK</Cd></Sts>"
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<Document xmlns="{NS}{version}">\n<BkToCstmrDbtCdtNtfctn>\n',
        f"  <GrpHdr><MsgId>{msg_id}</MsgId><CreDtTm>2026-01-07T09:00:00</CreDtTm></GrpHdr>\n",
        "  <Ntfctn>\n    <Id>NTF-1</Id>\n    <CreDtTm>2026-01-07T09:00:00</CreDtTm>\n",
        "    <Acct><Id><IBAN>DE89370400440532013000</IBAN></Id></Acct>\n",
    ]
    for e2e, amount, direction, reason in entries:
        parts.append(f'    <Ntry>\n      <Amt Ccy="{currency}">{amount}</Amt>\n')
        parts.append(f"      <CdtDbtInd>{direction}</CdtDbtInd>\n      {status}\n")
        parts.append("      <BookgDt><Dt>2026-01-07</Dt></BookgDt>\n")
        parts.append("      <NtryDtls><TxDtls>\n")
        parts.append(f"        <Refs><EndToEndId>{escape(e2e)}</EndToEndId></Refs>\n")
        if reason:
            parts.append(f"        <RtrInf><Rsn><Cd>{reason}</Cd></Rsn>")
            parts.append(f"<AddtlInf>Returned: {reason}</AddtlInf></RtrInf>\n")
        parts.append("      </TxDtls></NtryDtls>\n    </Ntry>\n")
    parts.append("  </Ntfctn>\n</BkToCstmrDbtCdtNtfctn>\n</Document>\n")
    return "".join(parts).encode()
