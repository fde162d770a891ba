//! Client commands of the authorization path: mandates, approvals, payouts,
//! payments and policy.

use std::io::Read;

use anyhow::{Context as _, Result, bail};
use purser_server::{
    ApprovalResponse, ApprovalsList, AuthorizationResponse, MandateResponse, MandatesList,
    PayoutResponse,
};
use purser_types::{Reservation, SignedMandate, UnixMs, WalletPolicy};
use serde_json::{Value, json};

use crate::cli::{
    ApprovalsCommand, KeyArgs, MandateCommand, PaymentCommand, PayoutArgs, PayoutStatusCommand,
    PolicyCommand,
};
use crate::commands::{Context, Reported};
use purser_client::new_idempotency_key;

pub(crate) fn key(args: KeyArgs) -> String {
    args.idempotency_key.unwrap_or_else(new_idempotency_key)
}

fn mandate_text(m: &MandateResponse) -> String {
    let cap = m
        .max_amount_per_tx
        .map(|c| format!(", at most {c} per payment"))
        .unwrap_or_default();
    let hosts = if m.host_allowlist.is_empty() {
        "any".to_owned()
    } else {
        m.host_allowlist.join(", ")
    };
    let mut text = format!(
        "Mandate {} ({})\n  up to {} USDC{cap}, for: {:?}\n  hosts: {hosts}\n  valid: {} to {}\n  spent {} · pending {} · remaining {} USDC",
        m.mandate_id,
        m.status.as_str(),
        m.limit_amount,
        m.description,
        m.valid_from,
        m.valid_until,
        m.spent_amount,
        m.pending_spent_amount,
        m.remaining_amount
    );
    if m.status == purser_types::MandateStatus::PendingSignature {
        text.push_str(&format!(
            "\n  Ask your human to open this link to review and sign it:\n  {}",
            m.sign_url
        ));
    }
    if let Some(signature) = &m.signature {
        text.push_str(&format!(
            "\n  signed by {} ({signature})",
            m.signer.as_deref().unwrap_or("?")
        ));
    }
    text
}

pub(crate) async fn mandate(ctx: &Context, command: MandateCommand) -> Result<()> {
    match command {
        MandateCommand::Create {
            description,
            limit,
            max_per_tx,
            hosts,
            valid_for_seconds,
            valid_until,
            category,
            key: k,
            client,
        } => {
            let api = ctx.client(&client).await?;
            let valid_until = valid_until
                .map(|t| {
                    UnixMs::parse_rfc3339(&t).context("--valid-until must be an RFC 3339 time")
                })
                .transpose()?;
            let body = json!({
                "description": description, "limitAmount": limit, "maxAmountPerTx": max_per_tx,
                "hostAllowlist": hosts, "validForSeconds": valid_for_seconds, "validUntil": valid_until,
                "category": category,
            });
            let answer = api.post("/api/mandates", &body, &key(k)).await?;
            let mandate: MandateResponse = answer.parse()?;
            ctx.emit(&answer.body, || mandate_text(&mandate))
        }
        MandateCommand::Status { mandate, client } => {
            let answer = ctx
                .client(&client)
                .await?
                .get(&format!("/api/mandates/{mandate}"))
                .await?;
            let mandate: MandateResponse = answer.parse()?;
            ctx.emit(&answer.body, || mandate_text(&mandate))
        }
        MandateCommand::List { status, client } => {
            let query = status.map(|s| format!("?status={s}")).unwrap_or_default();
            let answer = ctx
                .client(&client)
                .await?
                .get(&format!("/api/mandates{query}"))
                .await?;
            let list: MandatesList = answer.parse()?;
            ctx.emit(&answer.body, || list_text(&list))
        }
        MandateCommand::Eligible {
            host,
            amount,
            client,
        } => {
            let host = host.map(|h| format!("&host={h}")).unwrap_or_default();
            let answer = ctx
                .client(&client)
                .await?
                .get(&format!("/api/mandates/eligible?amount={amount}{host}"))
                .await?;
            let list: MandatesList = answer.parse()?;
            ctx.emit(&answer.body, || list_text(&list))
        }
        MandateCommand::Approve {
            mandate,
            key: k,
            client,
        } => decide_mandate(ctx, &client, &mandate, "approve", k).await,
        MandateCommand::Reject {
            mandate,
            key: k,
            client,
        } => decide_mandate(ctx, &client, &mandate, "reject", k).await,
        MandateCommand::Revoke {
            mandate,
            key: k,
            client,
        } => decide_mandate(ctx, &client, &mandate, "revoke", k).await,
        MandateCommand::Export { mandate, client } => {
            let answer = ctx
                .client(&client)
                .await?
                .get(&format!("/api/mandates/{mandate}/signed"))
                .await?;
            println!("{}", serde_json::to_string_pretty(&answer.body)?);
            Ok(())
        }
        MandateCommand::Verify { file } => verify_file(ctx, &file),
    }
}

fn list_text(list: &MandatesList) -> String {
    if list.items.is_empty() {
        return "No mandates.".to_owned();
    }
    list.items
        .iter()
        .map(|m| {
            format!(
                "{}  {:<17} remaining {:>10} of {:>10} USDC  {}",
                m.mandate_id,
                m.status.as_str(),
                m.remaining_amount.to_string(),
                m.limit_amount.to_string(),
                m.description.chars().take(40).collect::<String>()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn decide_mandate(
    ctx: &Context,
    client: &crate::cli::ClientArgs,
    mandate: &str,
    action: &str,
    k: KeyArgs,
) -> Result<()> {
    let api = ctx.client(client).await?;
    let answer = api
        .post(
            &format!("/api/mandates/{mandate}/{action}"),
            &json!({}),
            &key(k),
        )
        .await?;
    let mandate: MandateResponse = answer.parse()?;
    ctx.emit(&answer.body, || mandate_text(&mandate))
}

/// Verifies offline with the same code a payee would run; needs no server.
fn verify_file(ctx: &Context, file: &std::path::Path) -> Result<()> {
    let text = if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let signed: SignedMandate = serde_json::from_str(&text)
        .context("not a signed mandate (JSON from `purser mandate export`)")?;
    match purser_chain::mandate::verify(&signed) {
        Ok(signer) => {
            let body = json!({ "valid": true, "signer": signer, "mandateHash": signed.mandate_hash, "mandateId": signed.mandate_id });
            ctx.emit(&body, || {
                format!(
                    "VALID: mandate {} was signed by {signer}, the wallet's key, over exactly these terms.",
                    signed.mandate_id
                )
            })
        }
        Err(error) => {
            let body = json!({ "valid": false, "error": error.to_string() });
            ctx.emit(&body, || format!("INVALID: {error}"))?;
            Err(Reported(error.to_string()).into())
        }
    }
}

fn approval_text(a: &ApprovalResponse) -> String {
    let payee = [
        a.approval.payee.host.clone(),
        a.approval.payee.address.clone(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" · ");
    format!(
        "{}  {:<8} {} USDC to {payee}: {:?}\n  decide at {}",
        a.approval.id,
        a.approval.status.as_str(),
        a.approval.amount,
        a.approval.purpose,
        a.approval_url
    )
}

pub(crate) async fn approvals(ctx: &Context, command: ApprovalsCommand) -> Result<()> {
    let (client, path, body) = match command {
        ApprovalsCommand::List { all, client } => {
            let api = ctx.client(&client).await?;
            let answer = api.get(&format!("/api/approvals?pending={}", !all)).await?;
            let list: ApprovalsList = answer.parse()?;
            return ctx.emit(&answer.body, || {
                if list.items.is_empty() {
                    "No approvals waiting.".to_owned()
                } else {
                    list.items
                        .iter()
                        .map(approval_text)
                        .collect::<Vec<_>>()
                        .join("\n")
                }
            });
        }
        ApprovalsCommand::Approve {
            approval,
            key: k,
            client,
        } => (client, format!("/api/approvals/{approval}/approve"), key(k)),
        ApprovalsCommand::Deny {
            approval,
            key: k,
            client,
        } => (client, format!("/api/approvals/{approval}/deny"), key(k)),
    };
    let answer = ctx
        .client(&client)
        .await?
        .post(&path, &json!({}), &body)
        .await?;
    let approval: ApprovalResponse = answer.parse()?;
    ctx.emit(&answer.body, || approval_text(&approval))
}

fn payout_text(p: &PayoutResponse) -> String {
    let mut text = format!(
        "Payout {} {}: {} USDC to {} (rail {:?})",
        p.payout.id,
        p.payout.status.as_str(),
        p.payout.amount,
        p.payout.to_address,
        p.payout.rail
    );
    if let Some(url) = &p.approval_url {
        text.push_str(&format!(
            "\n  No mandate covers it: ask your human to approve it at\n  {url}"
        ));
    }
    if let Some(settlement) = &p.payout.settlement {
        text.push_str(&format!("\n  settled by {settlement}"));
    }
    if let Some(reason) = p.payout.failure_reason {
        text.push_str(&format!("\n  failed: {reason}"));
    }
    text
}

pub(crate) async fn payout(ctx: &Context, args: PayoutArgs) -> Result<()> {
    if let Some(PayoutStatusCommand::Status { payout, client }) = args.status {
        let answer = ctx
            .client(&client)
            .await?
            .get(&format!("/api/payouts/{payout}"))
            .await?;
        let payout: PayoutResponse = answer.parse()?;
        return ctx.emit(&answer.body, || payout_text(&payout));
    }
    let (Some(to), Some(amount), Some(id)) = (args.to, args.amount, args.payout_id) else {
        bail!(
            "a payout needs --to ADDRESS --amount X --id PAYOUT_ID (or use `purser payout status ID`)"
        );
    };
    let api = ctx.client(&args.client).await?;
    let body =
        json!({ "payoutId": id, "toAddress": to, "amount": amount, "mandateId": args.mandate });
    // The payout id is the idempotency key; the header repeats it for the API's rule.
    let answer = api.post("/api/payouts", &body, &id).await?;
    let payout: PayoutResponse = answer.parse()?;
    ctx.emit(&answer.body, || payout_text(&payout))
}

pub(crate) async fn payment(ctx: &Context, command: PaymentCommand) -> Result<()> {
    match command {
        PaymentCommand::Authorize {
            amount,
            host,
            address,
            purpose,
            mandate,
            approval,
            no_approval,
            key: k,
            client,
        } => {
            let body = json!({
                "amount": amount, "payee": { "host": host, "address": address }, "purpose": purpose,
                "mandateId": mandate, "approvalId": approval, "allowApproval": !no_approval,
            });
            let answer = ctx
                .client(&client)
                .await?
                .post("/api/payments/authorize", &body, &key(k))
                .await?;
            let response: AuthorizationResponse = answer.parse()?;
            ctx.emit(&answer.body, || match (&response.reservation, &response.approval_url) {
                (Some(r), _) => format!(
                    "Reserved {} USDC ({}) under {}",
                    r.amount,
                    r.id,
                    r.mandate_id.map_or("an approval or the auto-approve threshold".to_owned(), |m| format!("mandate {m}"))
                ),
                (None, Some(url)) => format!(
                    "Approval required ({}): ask your human to approve this payment at\n  {url}\nthen run this command again with --approval {}",
                    response.approval.as_ref().map(|a| a.id.to_string()).unwrap_or_default(),
                    response.approval.as_ref().map(|a| a.id.to_string()).unwrap_or_default()
                ),
                _ => "Unexpected answer".to_owned(),
            })
        }
        PaymentCommand::Commit {
            reservation,
            settlement,
            key: k,
            client,
        } => {
            let body = json!({ "settlement": settlement });
            let path = format!("/api/reservations/{reservation}/commit");
            reservation_change(ctx, &client, &path, &body, k).await
        }
        PaymentCommand::Release {
            reservation,
            reason,
            key: k,
            client,
        } => {
            let path = format!("/api/reservations/{reservation}/release");
            reservation_change(ctx, &client, &path, &json!({ "reason": reason }), k).await
        }
    }
}

async fn reservation_change(
    ctx: &Context,
    client: &crate::cli::ClientArgs,
    path: &str,
    body: &Value,
    k: KeyArgs,
) -> Result<()> {
    let answer = ctx.client(client).await?.post(path, body, &key(k)).await?;
    let reservation: Reservation = answer.parse()?;
    ctx.emit(&answer.body, || {
        let extra = reservation
            .release_reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        format!(
            "Reservation {} is {}{extra}: {} USDC",
            reservation.id,
            reservation.status.as_str(),
            reservation.amount
        )
    })
}

fn policy_text(policy: &WalletPolicy) -> String {
    let amount =
        |a: Option<purser_types::Usdc>| a.map_or("none".to_owned(), |a| format!("{a} USDC"));
    format!(
        "monthly cap per agent: {}\nper-payment cap: {}\ndenied hosts: {}\ndenied addresses: {}\nauto-approve up to: {}",
        amount(policy.per_agent_monthly_cap),
        amount(policy.per_payment_cap),
        if policy.denied_hosts.is_empty() {
            "none".to_owned()
        } else {
            policy.denied_hosts.join(", ")
        },
        if policy.denied_addresses.is_empty() {
            "none".to_owned()
        } else {
            policy.denied_addresses.join(", ")
        },
        amount(policy.auto_approve_up_to)
    )
}

pub(crate) async fn policy(ctx: &Context, command: PolicyCommand) -> Result<()> {
    match command {
        PolicyCommand::Show { client } => {
            let answer = ctx.client(&client).await?.get("/api/policy").await?;
            let policy: WalletPolicy = answer.parse()?;
            ctx.emit(&answer.body, || policy_text(&policy))
        }
        PolicyCommand::Set {
            monthly_cap,
            per_payment_cap,
            deny_hosts,
            deny_addresses,
            auto_approve_up_to,
            key: k,
            client,
        } => {
            let body = json!({
                "perAgentMonthlyCap": monthly_cap, "perPaymentCap": per_payment_cap, "deniedHosts": deny_hosts,
                "deniedAddresses": deny_addresses, "autoApproveUpTo": auto_approve_up_to,
            });
            let answer = ctx
                .client(&client)
                .await?
                .put("/api/policy", &body, &key(k))
                .await?;
            let policy: WalletPolicy = answer.parse()?;
            ctx.emit(&answer.body, || policy_text(&policy))
        }
    }
}
