"""Contracts: the data contracts (ODCS v3.1) the user can generate from, the built-in ones and their own (an
administrator's list holds everyone's), each with its tables, columns, constraints and a diagram; a new one
uploaded or a copy edited, validated and saved under a name; one's own deleted; any one downloaded."""

from pathlib import Path

import streamlit as st

from orchestrator import contracts
from orchestrator.contract_views import (
    columns_frame,
    constraints_frame,
    contract_diagram,
    contract_error_text,
    contract_label,
    contracts_frame,
    volume_text,
)
from orchestrator.domain.contract import MAX_CONTRACT_BYTES, ContractError

NOTICE = "_contracts_notice"  # session_state: what the last save or delete did, told once after its rerun
UPLOADED = "_contract_uploaded"  # session_state: the upload last copied into the editor

if "user" not in st.session_state:  # opened by URL before the frame ran (see app.py): log in first
    st.switch_page("app.py")
st.title("Data contracts")
user, is_admin = st.session_state["user"], st.session_state["is_admin"]
st.caption(
    "What a data set is and what valid data means for it, in the Open Data Contract Standard v3.1 "
    "(the workbench's own terms are in docs/contracts.md). Generate follows the contract you choose."
)
if notice := st.session_state.pop(NOTICE, None):
    st.success(notice)

entries = {entry.ref: entry for entry in contracts.listed(user, is_admin)}
st.dataframe(contracts_frame(list(entries.values())), hide_index=True)

asked = st.query_params.get("contract")
ref = st.selectbox(
    "Contract",
    list(entries),
    index=list(entries).index(asked if asked in entries else "shop"),
    format_func=lambda r: contract_label(entries[r]),
)
st.query_params["contract"] = ref
entry = entries[ref]
own = entry.owner == user


def _delete(where) -> None:
    """The owner's Delete of the contract shown, asked once more in a popover."""
    with where.popover("Delete", icon=":material/delete:"):
        st.markdown(f"Delete `{ref}`? Jobs generated from it keep their copy.")
        if st.button("Delete for good", key="delete_contract", type="primary"):
            contracts.delete(ref, user, is_admin)
            st.session_state[NOTICE] = f"Contract `{ref}` deleted."
            del st.query_params["contract"]
            st.rerun()


if entry.error:  # stored, but no longer valid: nothing of it can be shown or used
    st.error(
        f"`{ref}` no longer validates, so it cannot be shown, generated from or copied. "
        f"{contract_error_text(entry.error)}"
    )
    if own:
        _delete(st)
    st.stop()
contract = entry.source.contract

st.subheader(f"{contract.name} ({contract.id} {contract.version})")
if contract.description:
    st.markdown(contract.description)
st.caption(
    f"{len(contract.tables)} tables; the rows you ask for count **{contract.driving_table}**. "
    + ("Built in." if entry.owner is None else f"Owner: {entry.owner}.")
)
if entry.source.warnings:
    st.warning(
        "Read leniently; these fields are not ODCS v3.1's and are ignored:\n\n"
        + "\n".join(f"- `{warning}`" for warning in entry.source.warnings)
    )
generate, download, remove = st.columns(3, vertical_alignment="center")
if own or entry.owner is None:
    generate.page_link(
        "pages/generate.py",
        label="Generate from this contract",
        icon=":material/add:",
        query_params={"contract": ref},
    )
else:  # a job follows its owner's contracts
    generate.caption(f"{entry.owner}'s own: save a copy as yours to generate from it.")
download.download_button(
    "Download YAML",
    entry.source.text,
    file_name=f"{Path(ref).name}.yaml",
    mime="application/yaml",
    icon=":material/download:",
    key="download_contract",
    on_click="ignore",
)
if own:
    _delete(remove)

st.graphviz_chart(contract_diagram(contract))
for table in contract.tables.values():
    with st.expander(
        f"{table.name}: key {', '.join(table.primary_key)}, rows {volume_text(contract, table)}"
    ):
        if table.description:
            st.caption(table.description)
        st.dataframe(columns_frame(table), hide_index=True)
        declared = constraints_frame(contract, table.name)
        if len(declared):
            st.dataframe(declared, hide_index=True)

st.subheader("Add or change a contract")
st.caption(
    "Upload a YAML file, or edit the copy of the contract shown below, then save it under a name of yours. "
    "It is validated first; a contract with an error is not saved, and the error names where to change it."
)
editor, name_key = f"contract_text_{ref}", f"contract_name_{ref}"
st.session_state.setdefault(editor, entry.source.text)
st.session_state.setdefault(name_key, Path(ref).name if own else f"{Path(ref).name}-copy")
upload = st.file_uploader(
    "Upload a contract",
    type=["yaml", "yml"],
    key="contract_upload",
    max_upload_size=MAX_CONTRACT_BYTES // 1_000_000,
)
if upload is not None and st.session_state.get(UPLOADED) != upload.file_id:
    st.session_state[UPLOADED] = upload.file_id
    try:
        st.session_state[editor] = upload.getvalue().decode("utf-8")
    except UnicodeDecodeError:
        st.error(f"{upload.name} is not UTF-8 text; save it as UTF-8 and upload it again.")
    else:
        stem = Path(upload.name).stem.lower().replace(" ", "-").replace(".", "-")
        st.session_state[name_key] = stem
text = st.text_area("Contract YAML", key=editor, height=360)
name = st.text_input(
    "Save as", key=name_key, help="1-48 lower-case letters, digits, _ or -; saved as yours: USER/NAME"
)
if st.button("Validate and save", type="primary", key="save_contract"):
    try:
        saved = contracts.save(user, name, text)
    except ContractError as error:
        st.error(f"Nothing saved. {contract_error_text(error)}")
    else:
        tables = len(saved.source.contract.tables)
        st.session_state[NOTICE] = f"Saved as `{saved.ref}`: a valid contract of {tables} tables."
        st.session_state.pop(f"contract_text_{saved.ref}", None)  # its editor starts from what was saved
        st.query_params["contract"] = saved.ref
        st.rerun()
