# Nested opens with a careless allow-list: the demuxers that open other
# files (hls, concat, mov with external references, the AVI GAB2 + HLS
# trick) are allowed here on purpose.  A loopback listener records any
# connection; no byte of /etc/passwd may reach an output or an answer.
#
# libav 5.1 refuses most of these by its own defaults too (mov drefs are
# off, concat is "safe", GAB2 takes only srt/ass, HLS over our nameless
# AVIOContext has no base URL).  The last cases switch the first two off
# (vconv-cli --demux-opt, which only the CLI has).  For concat with
# safe=0 only the core's empty protocol whitelist then stands between the
# upload and another file: removing it fails this test.  The relative
# dref cases are still stopped by mov's own rule for relative references
# as well; the absolute ones (an alias with nlvl -1, use_absolute_path=1)
# are not: mov calls the core's io_open with the path, and the core's
# refusal must be what stops it (its log line is checked, and removing
# the refusal fails this test).  The sandboxed child (seccomp) is the
# third wall in the module.
use strict;
use warnings;

use lib 't/lib';
use File::Temp qw(tempdir);
use Test::More;

use VconvMedia qw(make_media cli);
use VconvHostile qw(:all);

my $dir = tempdir(CLEANUP => 1);
my $build = $ENV{VCONV_BUILD} // 'build';
my $SECRET = qr/root:x:0:0|daemon:x:1:1/;
like(slurp('/etc/passwd'), $SECRET, '/etc/passwd has the marker');

my $l = VconvHostile::Listener->new(lifetime => 120);
my $lp = $l->port;

# what a careless operator might allow; mp4 for the dref case
my $wide = 'hls,concat,avi,mov,mp4,m4a,3gp,3g2,mj2,mpegts';

my $n = 0;
my @seen;

sub convert {
    my ($in, $what, @opt) = @_;
    my $out = "$dir/out" . ++$n . '.mkv';
    my @pre = grep { /^--/ } @opt;
    @opt = grep { !/^--/ } @opt;
    my ($exit, $res, $raw) = cli('--input-formats', $wide,
                                 map({ split /=/, $_, 2 } @pre),
                                 $in, $out, 'format=mkv', @opt);
    push @seen, $raw // '';
    push @seen, slurp($out) if -f $out;
    my $code = $res && $res->{error} ? $res->{error}{code} : 'ok';
    ok(defined $res, "$what: a clean answer ($code)") or diag $raw;
    return $res;
}

my $seg = make_media($dir, 'ts');

# HLS playlists naming the listener, local files and nested protocols
my %pl = (
    http    => ["http://127.0.0.1:$lp/seg.ts"],
    file    => ['file:///etc/passwd', '/etc/passwd'],
    local   => [$seg],
    concat  => ["concat:/etc/passwd|$seg"],
    subfile => ['subfile,,start,0,end,0,,:/etc/passwd'],
);
for my $k (sort keys %pl) {
    my $f = hls_playlist($dir, "$k.m3u8", @{ $pl{$k} });
    my $res = convert($f, "HLS allowed, playlist of $k");
    ok(!($res && $res->{ok}), "HLS ($k): nothing converted from elsewhere");
}

# an ffconcat list of a local file and the listener
{
    my $f = ffconcat_list($dir, 'list.ffconcat', $seg, '/etc/passwd',
                          "http://127.0.0.1:$lp/c.ts");
    my $res = convert($f, 'concat allowed');
    ok(!($res && $res->{ok}), 'concat: nothing converted from elsewhere');
}

# the AVI GAB2 + HLS trick
{
    my $m3u = "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-TARGETDURATION:2\n"
            . "#EXTINF:2,\nhttp://127.0.0.1:$lp/gab2.ts\n"
            . "#EXTINF:2,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n";
    my $avi = avi_gab2_hls($dir, 'gab2.avi', $m3u);
    convert($avi, 'AVI with a GAB2 playlist, hls allowed');
}

# MOV external data reference to a local file
{
    my $src = make_media($dir, 'mp4', name => 'dref-src.mp4');
    my $mov = mov_dref($dir, $src, 'dref.mov', '/etc/passwd');
    convert($mov, 'MOV with a dref to /etc/passwd');
    convert($mov, 'the same as a remux', 'vcodec=copy');
}

# libav's own defences off: only the core's stand
{
    # the reference names a real clip: if it were opened, the job would
    # convert the other file's pictures
    my $src = make_media($dir, 'mp4', name => 'dref-src2.mp4');
    for my $target ($src, '/etc/passwd') {
        my $mov = mov_dref($dir, $src, 'dref2.mov', $target);
        for my $copy ('', 'vcodec=copy') {
            my $res = convert($mov, "MOV dref to $target, drefs on $copy",
                '--demux-opt=enable_drefs=1:use_absolute_path=1',
                $copy || ());
            ok(!($res && $res->{ok}),
               "MOV dref to $target $copy: nothing converted from it");
        }
    }
    # an alias with an absolute path and nlvl -1 (every track): mov goes
    # for the path itself once use_absolute_path=1; only the core's
    # io_open refusal is left, and its own log line must say it refused
    for my $target ($src, '/etc/passwd') {
        my $mov = mov_dref($dir, $src, 'dref-abs.mov', $target);
        my $d = slurp($mov);
        my $at = 0;
        my $n_alis = 0;
        while (($at = index($d, 'alis', $at)) >= 0) {
            my $i = $at + 4 + 134;      # nlvl from, to in the alias record
            die "no nlvl at $i" unless substr($d, $i, 4) eq pack('nn', 1, 1);
            substr($d, $i, 4) = pack('nn', 0xFFFF, 0xFFFF);
            $at = $i;
            $n_alis++;
        }
        spew($mov, $d);
        for my $copy ('', 'vcodec=copy') {
            my $what = "MOV absolute dref to $target, nlvl -1, "
                     . "use_absolute_path=1 $copy";
            my $out = "$dir/out" . ++$n . '.mkv';
            # -v: libav's and the core's log lines, on stderr
            my $cmd = "'$build/vconv-cli' -v --input-formats $wide "
                    . '--demux-opt enable_drefs=1:use_absolute_path=1 '
                    . "'$mov' '$out' format=mkv $copy 2>&1";
            my $log = `$cmd`;
            push @seen, $log;
            push @seen, slurp($out) if -f $out;
            ok($log !~ /"ok":true/, "$what: nothing converted from it");
            like($log, qr/Using absolute path on user request/,
                 "... libav's own rule let it through ($n_alis aliases)");
            my $refused = () = $log =~ /refused to open a nested input/g;
            is($refused, $n_alis, '... and the core refused every open');
        }
    }

    my $f = ffconcat_list($dir, 'unsafe.ffconcat', $seg, '/etc/passwd');
    my $res = convert($f, 'concat with safe=0', '--demux-opt=safe=0');
    ok(!($res && $res->{ok}),
       'concat, safe=0: no file but the upload is read');
}

sleep 1;
my @conn = $l->connections;
is(scalar @conn, 0, 'the listener saw no connection')
    or diag(join "\n", @conn);
my $leak = grep { /$SECRET/ } @seen;
is($leak, 0, 'no byte of /etc/passwd in any answer or output ('
             . scalar(@seen) . ' pieces)');
$l->stop;

done_testing;
