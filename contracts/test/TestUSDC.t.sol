// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {TestUSDC} from "../src/TestUSDC.sol";
import {Testing} from "./utils/Testing.sol";

/// @dev Tests compute every digest themselves from the EIP-712 formula
/// instead of asking the token, so a wrong domain or struct hash in the
/// token makes signatures fail here as they would for an off-chain signer.
contract TestUSDCTest is Testing {
    // Events under test, redeclared for vm.expectEmit.
    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);
    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
    event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);

    bytes32 constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 constant TRANSFER_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 constant RECEIVE_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 constant CANCEL_TYPEHASH = keccak256("CancelAuthorization(address authorizer,bytes32 nonce)");
    uint256 constant SECP256K1N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;

    // Fixed keys, so every run signs the same bytes.
    uint256 constant ALICE_PK = 0xA11CE;
    uint256 constant MALLORY_PK = 0xBAD;
    address alice;
    address mallory;
    address constant BOB = address(0xB0B);
    address constant RELAYER = address(0x5E1A7E);
    address constant DEPLOYER = address(0xDE9107E5);

    uint256 constant START = 1_700_000_000;
    uint256 constant ALICE_FUNDS = 1_000e6;
    uint256 constant VALID_AFTER = START - 1;
    uint256 constant VALID_BEFORE = START + 1 hours;
    bytes32 constant NONCE = keccak256("nonce-1");

    TestUSDC usdc;

    function setUp() public {
        vm.warp(START);
        alice = vm.addr(ALICE_PK);
        mallory = vm.addr(MALLORY_PK);
        vm.prank(DEPLOYER);
        usdc = new TestUSDC("USD Coin");
        vm.prank(DEPLOYER);
        usdc.mint(alice, ALICE_FUNDS);
    }

    // ------------------------------------------------------------------
    // Helpers
    // ------------------------------------------------------------------

    function domainSeparator(string memory name, uint256 chainId, address token) internal pure returns (bytes32) {
        return keccak256(abi.encode(DOMAIN_TYPEHASH, keccak256(bytes(name)), keccak256(bytes("2")), chainId, token));
    }

    function authDigest(
        bytes32 domain,
        bytes32 typehash,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) internal pure returns (bytes32) {
        bytes32 structHash = keccak256(abi.encode(typehash, from, to, value, validAfter, validBefore, nonce));
        return keccak256(abi.encodePacked("\x19\x01", domain, structHash));
    }

    /// Signs a TransferWithAuthorization for `usdc` on the current chain.
    function signTransfer(uint256 pk, address from, address to, uint256 value, bytes32 nonce)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        bytes32 domain = domainSeparator("USD Coin", block.chainid, address(usdc));
        return vm.sign(pk, authDigest(domain, TRANSFER_TYPEHASH, from, to, value, VALID_AFTER, VALID_BEFORE, nonce));
    }

    function signReceive(uint256 pk, address from, address to, uint256 value, bytes32 nonce)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        bytes32 domain = domainSeparator("USD Coin", block.chainid, address(usdc));
        return vm.sign(pk, authDigest(domain, RECEIVE_TYPEHASH, from, to, value, VALID_AFTER, VALID_BEFORE, nonce));
    }

    function signCancel(uint256 pk, address authorizer, bytes32 nonce)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        bytes32 domain = domainSeparator("USD Coin", block.chainid, address(usdc));
        bytes32 structHash = keccak256(abi.encode(CANCEL_TYPEHASH, authorizer, nonce));
        return vm.sign(pk, keccak256(abi.encodePacked("\x19\x01", domain, structHash)));
    }

    function submitTransfer(uint256 value, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) internal {
        vm.prank(RELAYER);
        usdc.transferWithAuthorization(alice, BOB, value, VALID_AFTER, VALID_BEFORE, nonce, v, r, s);
    }

    function assertUnmoved() internal view {
        assertEq(usdc.balanceOf(alice), ALICE_FUNDS, "alice balance moved");
        assertEq(usdc.balanceOf(BOB), 0, "bob balance moved");
        assertEq(usdc.totalSupply(), ALICE_FUNDS, "total supply changed");
    }

    // ------------------------------------------------------------------
    // Metadata and EIP-712 domain
    // ------------------------------------------------------------------

    function test_Metadata() public {
        assertEq(usdc.name(), "USD Coin");
        assertEq(usdc.symbol(), "USDC");
        assertEq(usdc.decimals(), 6);
        assertEq(usdc.version(), "2");
        assertEq(usdc.owner(), DEPLOYER);

        TestUSDC sepoliaStyle = new TestUSDC("USDC");
        assertEq(sepoliaStyle.name(), "USDC");
        assertEq(sepoliaStyle.symbol(), "USDC");
        assertEq(sepoliaStyle.owner(), address(this));
    }

    function test_Typehashes() public view {
        assertEq(usdc.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), TRANSFER_TYPEHASH);
        assertEq(usdc.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(), RECEIVE_TYPEHASH);
        assertEq(usdc.CANCEL_AUTHORIZATION_TYPEHASH(), CANCEL_TYPEHASH);
        // The values Circle's FiatToken publishes.
        assertEq(TRANSFER_TYPEHASH, 0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267);
        assertEq(RECEIVE_TYPEHASH, 0xd099cc98ef71107a616c4f0f941f04c322d8e254fe26b3c6668db87aae413de8);
        assertEq(CANCEL_TYPEHASH, 0x158b0a9edf7a828aad02f63cd515c68ef2f50ba807396f6d12842833a1597429);
    }

    function test_DomainSeparator_UsdCoin() public view {
        assertEq(usdc.DOMAIN_SEPARATOR(), domainSeparator("USD Coin", block.chainid, address(usdc)));
    }

    function test_DomainSeparator_Usdc() public {
        TestUSDC sepoliaStyle = new TestUSDC("USDC");
        bytes32 expected = domainSeparator("USDC", block.chainid, address(sepoliaStyle));
        assertEq(sepoliaStyle.DOMAIN_SEPARATOR(), expected);
        // The name is part of the domain: the two styles must differ.
        assertTrue(expected != domainSeparator("USD Coin", block.chainid, address(sepoliaStyle)));
    }

    function test_DomainSeparator_FollowsChainId() public {
        vm.chainId(84532);
        assertEq(usdc.DOMAIN_SEPARATOR(), domainSeparator("USD Coin", 84532, address(usdc)));
        vm.chainId(8453);
        assertEq(usdc.DOMAIN_SEPARATOR(), domainSeparator("USD Coin", 8453, address(usdc)));
    }

    function test_Eip712Domain() public view {
        (
            bytes1 fields,
            string memory name,
            string memory version,
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] memory extensions
        ) = usdc.eip712Domain();
        assertEq(fields, hex"0f");
        assertEq(name, "USD Coin");
        assertEq(version, "2");
        assertEq(chainId, block.chainid);
        assertEq(verifyingContract, address(usdc));
        assertEq(salt, bytes32(0));
        assertEq(extensions.length, 0);
        assertEq(domainSeparator(name, chainId, verifyingContract), usdc.DOMAIN_SEPARATOR());
    }

    // ------------------------------------------------------------------
    // Mint
    // ------------------------------------------------------------------

    function test_Mint_ByOwner() public {
        vm.expectEmit(true, true, false, true, address(usdc));
        emit Transfer(address(0), BOB, 5e6);
        vm.prank(DEPLOYER);
        usdc.mint(BOB, 5e6);
        assertEq(usdc.balanceOf(BOB), 5e6);
        assertEq(usdc.totalSupply(), ALICE_FUNDS + 5e6);
    }

    function test_Mint_RevertsForNonOwner() public {
        vm.prank(alice);
        vm.expectRevert(bytes("TestUSDC: caller is not the owner"));
        usdc.mint(alice, 1);
        assertUnmoved();
    }

    function test_Mint_RevertsToZeroAddress() public {
        vm.prank(DEPLOYER);
        vm.expectRevert(bytes("TestUSDC: mint to the zero address"));
        usdc.mint(address(0), 1);
    }

    // ------------------------------------------------------------------
    // ERC-20
    // ------------------------------------------------------------------

    function test_Transfer() public {
        vm.expectEmit(true, true, false, true, address(usdc));
        emit Transfer(alice, BOB, 250e6);
        vm.prank(alice);
        assertTrue(usdc.transfer(BOB, 250e6));
        assertEq(usdc.balanceOf(alice), ALICE_FUNDS - 250e6);
        assertEq(usdc.balanceOf(BOB), 250e6);
        assertEq(usdc.totalSupply(), ALICE_FUNDS);
    }

    function test_Transfer_RevertsOnInsufficientBalance() public {
        vm.prank(alice);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
        // forge-lint: disable-next-line(erc20-unchecked-transfer) -- reverts, returns nothing
        usdc.transfer(BOB, ALICE_FUNDS + 1);
        assertUnmoved();
    }

    function test_Transfer_RevertsToZeroAddress() public {
        vm.prank(alice);
        vm.expectRevert(bytes("ERC20: transfer to the zero address"));
        // forge-lint: disable-next-line(erc20-unchecked-transfer) -- reverts, returns nothing
        usdc.transfer(address(0), 1);
        assertUnmoved();
    }

    function test_ApproveAndTransferFrom() public {
        vm.expectEmit(true, true, false, true, address(usdc));
        emit Approval(alice, RELAYER, 100e6);
        vm.prank(alice);
        assertTrue(usdc.approve(RELAYER, 100e6));
        assertEq(usdc.allowance(alice, RELAYER), 100e6);

        vm.expectEmit(true, true, false, true, address(usdc));
        emit Transfer(alice, BOB, 60e6);
        vm.prank(RELAYER);
        assertTrue(usdc.transferFrom(alice, BOB, 60e6));
        assertEq(usdc.allowance(alice, RELAYER), 40e6);
        assertEq(usdc.balanceOf(alice), ALICE_FUNDS - 60e6);
        assertEq(usdc.balanceOf(BOB), 60e6);
    }

    function test_TransferFrom_RevertsOnInsufficientAllowance() public {
        vm.prank(alice);
        usdc.approve(RELAYER, 10e6);
        vm.prank(RELAYER);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds allowance"));
        // forge-lint: disable-next-line(erc20-unchecked-transfer) -- reverts, returns nothing
        usdc.transferFrom(alice, BOB, 10e6 + 1);
        assertUnmoved();
        assertEq(usdc.allowance(alice, RELAYER), 10e6);
    }

    function test_TransferFrom_RevertsOnInsufficientBalance() public {
        vm.prank(alice);
        usdc.approve(RELAYER, type(uint256).max);
        vm.prank(RELAYER);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
        // forge-lint: disable-next-line(erc20-unchecked-transfer) -- reverts, returns nothing
        usdc.transferFrom(alice, BOB, ALICE_FUNDS + 1);
        assertUnmoved();
    }

    // ------------------------------------------------------------------
    // transferWithAuthorization: happy paths
    // ------------------------------------------------------------------

    function test_TransferWithAuthorization_VRS() public {
        uint256 value = 123_456_789;
        (uint8 v, bytes32 r, bytes32 s) = signTransfer(ALICE_PK, alice, BOB, value, NONCE);
        assertFalse(usdc.authorizationState(alice, NONCE));

        vm.expectEmit(true, true, false, true, address(usdc));
        emit AuthorizationUsed(alice, NONCE);
        vm.expectEmit(true, true, false, true, address(usdc));
        emit Transfer(alice, BOB, value);
        submitTransfer(value, NONCE, v, r, s);

        assertEq(usdc.balanceOf(alice), ALICE_FUNDS - value);
        assertEq(usdc.balanceOf(BOB), value);
        assertEq(usdc.balanceOf(RELAYER), 0);
        assertEq(usdc.totalSupply(), ALICE_FUNDS);
        assertTrue(usdc.authorizationState(alice, NONCE));
    }

    function test_TransferWithAuthorization_BytesSignature() public {
        uint256 value = 1e6;
        (uint8 v, bytes32 r, bytes32 s) = signTransfer(ALICE_PK, alice, BOB, value, NONCE);

        vm.expectEmit(true, true, false, true, address(usdc));
        emit AuthorizationUsed(alice, NONCE);
        vm.expectEmit(true, true, false, true, address(usdc));
        emit Transfer(alice, BOB, value);
        vm.prank(RELAYER);
        usdc.transferWithAuthorization(alice, BOB, value, VALID_AFTER, VALID_BEFORE, NONCE, abi.encodePacked(r, s, v));

        assertEq(usdc.balanceOf(alice), ALICE_FUNDS - value);
        assertEq(usdc.balanceOf(BOB), value);
        assertTrue(usdc.authorizationState(alice, NONCE));
    }

    function test_TransferWithAuthorization_ValidJustInsideWindow() public {
        (uint8 v, bytes32 r, bytes32 s) = signTransfer(ALICE_PK, alice, BOB, 1, NONCE);
        vm.warp(VALID_AFTER + 1);
        submitTransfer(1, NONCE, v, r, s);

        (v, r, s) = signTransfer(ALICE_PK, alice, BOB, 1, keccak256("nonce-2"));
        vm.warp(VALID_BEFORE - 1);
        submitTransfer(1, keccak256("nonce-2"), v, r, s);
        assertEq(usdc.balanceOf(BOB), 2);
    }

    // ------------------------------------------------------------------
    // transferWithAuthorization: rejections (each moves nothing)
    // ------------------------------------------------------------------

    function test_TransferWithAuthorization_RevertsForWrongSigner() public {
        (uint8 v, bytes32 r, bytes32 s) = signTransfer(MALLORY_PK, alice, BOB, 1e6, NONCE);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        submitTransfer(1e6, NONCE, v, r, s);
        assertUnmoved();
        assertFalse(usdc.authorizationState(alice, NONCE));
    }

    function test_TransferWithAuthorization_RevertsForTamperedValue() public {
        (uint8 v, bytes32 r, bytes32 s) = signTransfer(ALICE_PK, alice, BOB, 1e6, NONCE);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        submitTransfer(2e6, NONCE, v, r, s);
        assertUnmoved();
    }

    function test_TransferWithAuthorization_RevertsForTamperedPayee() public {
        (uint8 v, bytes32 r, bytes32 s) = signTransfer(ALICE_PK, alice, BOB, 1e6, NONCE);
        vm.prank(RELAYER);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        usdc.transferWithAuthorization(alice, RELAYER, 1e6, VALID_AFTER, VALID_BEFORE, NONCE, v, r, s);
        assertUnmoved();
    }

    function test_TransferWithAuthorization_RevertsWhenExpired() public {
        (uint8 v, bytes32 r, bytes32 s) = signTransfer(ALICE_PK, alice, BOB, 1e6, NONCE);
        vm.warp(VALID_BEFORE); // validBefore is exclusive
        vm.expectRevert(bytes("FiatTokenV2: authorization is expired"));
        submitTransfer(1e6, NONCE, v, r, s);
        assertUnmoved();
    }

    function test_TransferWithAuthorization_RevertsWhenNotYetValid() public {
        (uint8 v, bytes32 r, bytes32 s) = signTransfer(ALICE_PK, alice, BOB, 1e6, NONCE);
        vm.warp(VALID_AFTER); // validAfter is exclusive
        vm.expectRevert(bytes("FiatTokenV2: authorization is not yet valid"));
        submitTransfer(1e6, NONCE, v, r, s);
        assertUnmoved();
    }

    function test_TransferWithAuthorization_RevertsOnReusedNonce() public {
        (uint8 v, bytes32 r, bytes32 s) = signTransfer(ALICE_PK, alice, BOB, 1e6, NONCE);
        submitTransfer(1e6, NONCE, v, r, s);
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        submitTransfer(1e6, NONCE, v, r, s);
        assertEq(usdc.balanceOf(alice), ALICE_FUNDS - 1e6);
        assertEq(usdc.balanceOf(BOB), 1e6);
    }

    function test_TransferWithAuthorization_RevertsOnMalleableSignature() public {
        (uint8 v, bytes32 r, bytes32 s) = signTransfer(ALICE_PK, alice, BOB, 1e6, NONCE);
        // The high-s twin recovers the same signer through ecrecover...
        bytes32 highS = bytes32(SECP256K1N - uint256(s));
        uint8 flippedV = v == 27 ? 28 : 27;
        bytes32 digest = authDigest(
            domainSeparator("USD Coin", block.chainid, address(usdc)),
            TRANSFER_TYPEHASH,
            alice,
            BOB,
            1e6,
            VALID_AFTER,
            VALID_BEFORE,
            NONCE
        );
        assertEq(ecrecover(digest, flippedV, r, highS), alice);
        // ...and the token must refuse it.
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        submitTransfer(1e6, NONCE, flippedV, r, highS);
        vm.prank(RELAYER);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        usdc.transferWithAuthorization(
            alice, BOB, 1e6, VALID_AFTER, VALID_BEFORE, NONCE, abi.encodePacked(r, highS, flippedV)
        );
        assertUnmoved();
    }

    function test_TransferWithAuthorization_RevertsOnBadV() public {
        (uint8 v, bytes32 r, bytes32 s) = signTransfer(ALICE_PK, alice, BOB, 1e6, NONCE);
        // v as 0/1 (the raw recovery id) is not accepted, as in FiatToken.
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        submitTransfer(1e6, NONCE, v - 27, r, s);
        assertUnmoved();
    }

    function test_TransferWithAuthorization_RevertsOnBadSignatureLength() public {
        (uint8 v, bytes32 r, bytes32 s) = signTransfer(ALICE_PK, alice, BOB, 1e6, NONCE);
        vm.prank(RELAYER);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        usdc.transferWithAuthorization(
            alice, BOB, 1e6, VALID_AFTER, VALID_BEFORE, NONCE, abi.encodePacked(r, s, v, uint8(0))
        );
        assertUnmoved();
    }

    function test_TransferWithAuthorization_ChecksTimeBeforeNonceBeforeSignature() public {
        (uint8 v, bytes32 r, bytes32 s) = signTransfer(ALICE_PK, alice, BOB, 1e6, NONCE);
        submitTransfer(1e6, NONCE, v, r, s);
        // Used nonce and a garbage signature: the nonce error wins.
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        submitTransfer(1e6, NONCE, 0, 0, 0);
        // Expired as well: the time error wins.
        vm.warp(VALID_BEFORE);
        vm.expectRevert(bytes("FiatTokenV2: authorization is expired"));
        submitTransfer(1e6, NONCE, 0, 0, 0);
    }

    function test_TransferWithAuthorization_RevertsOnInsufficientBalance() public {
        (uint8 v, bytes32 r, bytes32 s) = signTransfer(ALICE_PK, alice, BOB, ALICE_FUNDS + 1, NONCE);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
        submitTransfer(ALICE_FUNDS + 1, NONCE, v, r, s);
        assertUnmoved();
        // The whole call reverted, so the nonce is still unused.
        assertFalse(usdc.authorizationState(alice, NONCE));
    }

    function test_TransferWithAuthorization_RevertsForAnotherChainId() public {
        bytes32 otherChain = domainSeparator("USD Coin", block.chainid + 1, address(usdc));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(
            ALICE_PK, authDigest(otherChain, TRANSFER_TYPEHASH, alice, BOB, 1e6, VALID_AFTER, VALID_BEFORE, NONCE)
        );
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        submitTransfer(1e6, NONCE, v, r, s);
        assertUnmoved();
    }

    function test_TransferWithAuthorization_RevertsForAnotherToken() public {
        TestUSDC other = new TestUSDC("USD Coin");
        bytes32 otherToken = domainSeparator("USD Coin", block.chainid, address(other));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(
            ALICE_PK, authDigest(otherToken, TRANSFER_TYPEHASH, alice, BOB, 1e6, VALID_AFTER, VALID_BEFORE, NONCE)
        );
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        submitTransfer(1e6, NONCE, v, r, s);
        assertUnmoved();
    }

    function test_TransferWithAuthorization_RevertsForOtherTokenName() public {
        // A signature for a "USDC"-named domain (Base Sepolia style) must not
        // verify on a "USD Coin" token at the same address and chain.
        bytes32 otherName = domainSeparator("USDC", block.chainid, address(usdc));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(
            ALICE_PK, authDigest(otherName, TRANSFER_TYPEHASH, alice, BOB, 1e6, VALID_AFTER, VALID_BEFORE, NONCE)
        );
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        submitTransfer(1e6, NONCE, v, r, s);
        assertUnmoved();
    }

    function test_TransferWithAuthorization_RevertsForReceiveSignature() public {
        // The typehash separates the two kinds: a receive authorization cannot
        // be replayed as a transfer authorization by a third party.
        (uint8 v, bytes32 r, bytes32 s) = signReceive(ALICE_PK, alice, BOB, 1e6, NONCE);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        submitTransfer(1e6, NONCE, v, r, s);
        assertUnmoved();
    }

    // ------------------------------------------------------------------
    // receiveWithAuthorization
    // ------------------------------------------------------------------

    function test_ReceiveWithAuthorization_ByPayee() public {
        (uint8 v, bytes32 r, bytes32 s) = signReceive(ALICE_PK, alice, BOB, 7e6, NONCE);
        vm.expectEmit(true, true, false, true, address(usdc));
        emit AuthorizationUsed(alice, NONCE);
        vm.expectEmit(true, true, false, true, address(usdc));
        emit Transfer(alice, BOB, 7e6);
        vm.prank(BOB);
        usdc.receiveWithAuthorization(alice, BOB, 7e6, VALID_AFTER, VALID_BEFORE, NONCE, v, r, s);
        assertEq(usdc.balanceOf(alice), ALICE_FUNDS - 7e6);
        assertEq(usdc.balanceOf(BOB), 7e6);
        assertTrue(usdc.authorizationState(alice, NONCE));
    }

    function test_ReceiveWithAuthorization_BytesSignature() public {
        (uint8 v, bytes32 r, bytes32 s) = signReceive(ALICE_PK, alice, BOB, 7e6, NONCE);
        vm.prank(BOB);
        usdc.receiveWithAuthorization(alice, BOB, 7e6, VALID_AFTER, VALID_BEFORE, NONCE, abi.encodePacked(r, s, v));
        assertEq(usdc.balanceOf(BOB), 7e6);
        assertTrue(usdc.authorizationState(alice, NONCE));
    }

    function test_ReceiveWithAuthorization_RevertsWhenCallerIsNotPayee() public {
        (uint8 v, bytes32 r, bytes32 s) = signReceive(ALICE_PK, alice, BOB, 7e6, NONCE);
        vm.prank(RELAYER);
        vm.expectRevert(bytes("FiatTokenV2: caller must be the payee"));
        usdc.receiveWithAuthorization(alice, BOB, 7e6, VALID_AFTER, VALID_BEFORE, NONCE, v, r, s);
        vm.prank(RELAYER);
        vm.expectRevert(bytes("FiatTokenV2: caller must be the payee"));
        usdc.receiveWithAuthorization(alice, BOB, 7e6, VALID_AFTER, VALID_BEFORE, NONCE, abi.encodePacked(r, s, v));
        assertUnmoved();
        assertFalse(usdc.authorizationState(alice, NONCE));
    }

    function test_ReceiveWithAuthorization_RevertsForTransferSignature() public {
        (uint8 v, bytes32 r, bytes32 s) = signTransfer(ALICE_PK, alice, BOB, 7e6, NONCE);
        vm.prank(BOB);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        usdc.receiveWithAuthorization(alice, BOB, 7e6, VALID_AFTER, VALID_BEFORE, NONCE, v, r, s);
        assertUnmoved();
    }

    // ------------------------------------------------------------------
    // cancelAuthorization
    // ------------------------------------------------------------------

    function test_CancelAuthorization_BlocksLaterTransfer() public {
        (uint8 cv, bytes32 cr, bytes32 cs) = signCancel(ALICE_PK, alice, NONCE);
        vm.expectEmit(true, true, false, true, address(usdc));
        emit AuthorizationCanceled(alice, NONCE);
        vm.prank(RELAYER);
        usdc.cancelAuthorization(alice, NONCE, cv, cr, cs);
        assertTrue(usdc.authorizationState(alice, NONCE));

        (uint8 v, bytes32 r, bytes32 s) = signTransfer(ALICE_PK, alice, BOB, 1e6, NONCE);
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        submitTransfer(1e6, NONCE, v, r, s);
        assertUnmoved();
    }

    function test_CancelAuthorization_BytesSignature() public {
        (uint8 cv, bytes32 cr, bytes32 cs) = signCancel(ALICE_PK, alice, NONCE);
        vm.expectEmit(true, true, false, true, address(usdc));
        emit AuthorizationCanceled(alice, NONCE);
        usdc.cancelAuthorization(alice, NONCE, abi.encodePacked(cr, cs, cv));
        assertTrue(usdc.authorizationState(alice, NONCE));
    }

    function test_CancelAuthorization_RevertsForUsedNonce() public {
        (uint8 v, bytes32 r, bytes32 s) = signTransfer(ALICE_PK, alice, BOB, 1e6, NONCE);
        submitTransfer(1e6, NONCE, v, r, s);
        (uint8 cv, bytes32 cr, bytes32 cs) = signCancel(ALICE_PK, alice, NONCE);
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        usdc.cancelAuthorization(alice, NONCE, cv, cr, cs);
    }

    function test_CancelAuthorization_RevertsWhenAlreadyCanceled() public {
        (uint8 cv, bytes32 cr, bytes32 cs) = signCancel(ALICE_PK, alice, NONCE);
        usdc.cancelAuthorization(alice, NONCE, cv, cr, cs);
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        usdc.cancelAuthorization(alice, NONCE, cv, cr, cs);
    }

    function test_CancelAuthorization_RevertsForWrongSigner() public {
        (uint8 cv, bytes32 cr, bytes32 cs) = signCancel(MALLORY_PK, alice, NONCE);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        usdc.cancelAuthorization(alice, NONCE, cv, cr, cs);
        assertFalse(usdc.authorizationState(alice, NONCE));
    }

    // ------------------------------------------------------------------
    // Fuzz
    // ------------------------------------------------------------------

    function testFuzz_TransferWithAuthorization_MovesExactlyValue(uint256 value, bytes32 nonce) public {
        value = bound(value, 0, ALICE_FUNDS);
        (uint8 v, bytes32 r, bytes32 s) = signTransfer(ALICE_PK, alice, BOB, value, nonce);
        submitTransfer(value, nonce, v, r, s);
        assertEq(usdc.balanceOf(alice), ALICE_FUNDS - value);
        assertEq(usdc.balanceOf(BOB), value);
        assertEq(usdc.balanceOf(RELAYER), 0);
        assertEq(usdc.totalSupply(), ALICE_FUNDS);
        assertTrue(usdc.authorizationState(alice, nonce));
    }

    function testFuzz_Transfer_MovesExactlyValue(uint256 value) public {
        value = bound(value, 0, ALICE_FUNDS);
        vm.prank(alice);
        assertTrue(usdc.transfer(BOB, value));
        assertEq(usdc.balanceOf(alice), ALICE_FUNDS - value);
        assertEq(usdc.balanceOf(BOB), value);
        assertEq(usdc.totalSupply(), ALICE_FUNDS);
    }
}
